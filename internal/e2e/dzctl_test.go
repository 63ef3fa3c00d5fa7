package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// dzctl runs the CLI in-process against the stack, as a user would.
func (f verifyFixture) dzctl(t *testing.T, key, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": f.s.GRPCAddr, "DZCONNECT_API_KEY": key}
	app := cli.New(strings.NewReader(stdin), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	code := app.Execute(context.Background(), args)
	return out.String(), errOut.String(), code
}

func nameOf(t *testing.T, js string) string {
	t.Helper()
	var v struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil || v.Name == "" {
		t.Fatalf("no name in %q: %v", js, err)
	}
	return v.Name
}

// TestDzctlAgainstTheServer walks the README's path with dzctl against the
// real server and msftsim: an organization, a key, a tenant, an integration
// whose secret comes from stdin, a check with its report, the history.
func TestDzctlAgainstTheServer(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	creds, err := f.sim.Admin().CreateApp(f.simTID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := f.dzctl(t, f.s.AdminKey, "", "org", "create", "--display-name", "CLI MSSP", "-o", "json")
	if code != 0 {
		t.Fatalf("org create: %d %s", code, errOut)
	}
	org := nameOf(t, out)
	out, errOut, code = f.dzctl(t, f.s.AdminKey, "", "apikey", "create", "--org", org, "--display-name", "ops", "--role", "operator", "-o", "json")
	if code != 0 {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	var key struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &key); err != nil || !strings.HasPrefix(key.Secret, "dzk_") {
		t.Fatalf("apikey create output %q", out)
	}
	out, errOut, code = f.dzctl(t, key.Secret, "", "tenant", "create", "--org", org, "--entra-tenant-id", f.simTID, "--display-name", "Customer", "-o", "json")
	if code != 0 {
		t.Fatalf("tenant create: %d %s", code, errOut)
	}
	tenant := nameOf(t, out)
	out, errOut, code = f.dzctl(t, key.Secret, creds.ClientSecret+"\n", "integration", "create", "--tenant", tenant, "--kind", "defender",
		"--client-id", creds.ClientID, "--client-secret-file", "-", "-o", "json")
	if code != 0 {
		t.Fatalf("integration create: %d %s", code, errOut)
	}
	if strings.Contains(out+errOut, creds.ClientSecret) {
		t.Fatal("dzctl printed the client secret")
	}
	integ := nameOf(t, out)
	out, errOut, code = f.dzctl(t, key.Secret, "", "check", integ)
	if code != 0 || !strings.HasPrefix(out, "HEALTHY") || !strings.Contains(out, "probe:graph-security-alerts-v2") {
		t.Fatalf("check: %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = f.dzctl(t, key.Secret, "", "integration", "checks", integ)
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("checks: %d %s", code, out)
	}
	// Errors name the field and exit non-zero.
	_, errOut, code = f.dzctl(t, key.Secret, "", "tenant", "create", "--org", org, "--entra-tenant-id", "nope", "--display-name", "x")
	if code == 0 || !strings.Contains(errOut, "tenant.entra_tenant_id") {
		t.Fatalf("invalid tenant: %d %s", code, errOut)
	}
}
