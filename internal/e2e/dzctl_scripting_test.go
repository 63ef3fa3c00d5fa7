package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestDzctlBinaryScripting runs the built dzctl as a shell script would:
// a context from its config file (address, key file, organization), names
// and fields picked without sed, YAML, and a completion script bash loads.
func TestDzctlBinaryScripting(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	org := s.NewOrg(t, "Scripting MSSP")

	dir := t.TempDir()
	bin := filepath.Join(dir, "dzctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dropzoneai/dzconnect/cmd/dzctl").CombinedOutput(); err != nil {
		t.Fatalf("building dzctl: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.key"), []byte(org.Operator+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only what a script sets: no DZCONNECT_* from the test's environment.
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	dzctl := func(stdin string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("dzctl %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}

	dzctl("", "config", "set-context", "e2e", "--addr", s.GRPCAddr, "--api-key-file", filepath.Join(dir, "operator.key"), "--org", org.Name)
	if _, err := os.Stat(filepath.Join(home, ".config", "dzctl", "config.yaml")); err != nil {
		t.Fatalf("config file: %v", err)
	}

	// The README's flow: each command's output is the next one's argument.
	out, _ := dzctl("", "tenant", "create", "--entra-tenant-id", uuid.NewString(), "--display-name", "Contoso", "--label", "tier=gold", "-o", "name")
	tenant := strings.TrimSpace(out)
	if !strings.HasPrefix(tenant, org.Name+"/tenants/") {
		t.Fatalf("tenant create -o name = %q", out)
	}
	out, _ = dzctl("client~Secret.Value_1234567890abcdefghijklm\n", "integration", "create", "--tenant", tenant, "--kind", "defender",
		"--client-id", uuid.NewString(), "--client-secret-file", "-", "--field", "name")
	integ := strings.TrimSpace(out)
	if !strings.HasPrefix(integ, tenant+"/integrations/") {
		t.Fatalf("integration create --field name = %q", out)
	}
	if out, _ = dzctl("", "integration", "get", integ, "--field", "kind"); out != "INTEGRATION_KIND_MICROSOFT_365_DEFENDER\n" {
		t.Errorf("--field kind = %q", out)
	}
	if out, _ = dzctl("", "tenant", "get", tenant, "--field", "labels.tier"); out != "gold\n" {
		t.Errorf("--field labels.tier = %q", out)
	}
	if out, _ = dzctl("", "integration", "list", "-o", "name"); out != integ+"\n" {
		t.Errorf("integration list -o name (the context's organization) = %q", out)
	}
	if out, _ = dzctl("", "tenant", "list", "-o", "yaml"); !strings.HasPrefix(out, "tenants:\n  - name: "+tenant+"\n") || !strings.Contains(out, "displayName: Contoso\n") {
		t.Errorf("tenant list -o yaml:\n%s", out)
	}

	// Flags and environment win over the context: a viewer's key may not
	// delete, so the delete below fails only if the environment's key won.
	env = append(env, "DZCONNECT_API_KEY="+org.Viewer)
	cmd := exec.Command(bin, "integration", "delete", integ)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "PermissionDenied") && !strings.Contains(string(out), "permission") {
		t.Errorf("delete with the viewer key from the environment: %v\n%s", err, out)
	}
	if out, _ = dzctl("", "integration", "delete", integ, "--api-key", org.Operator, "-o", "name"); out != integ+"\n" {
		t.Errorf("delete -o name = %q", out)
	}

	// The completion script loads in bash and registers dzctl.
	if _, err := exec.LookPath("bash"); err == nil {
		script, _ := dzctl("", "completion", "bash")
		c := exec.Command("bash", "--norc", "-c", `source /dev/stdin && complete -p dzctl`)
		c.Stdin = strings.NewReader(script)
		if out, err := c.CombinedOutput(); err != nil || !strings.Contains(string(out), "dzctl") {
			t.Errorf("bash completion: %v\n%s", err, out)
		}
	}
}
