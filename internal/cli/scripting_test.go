package cli_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
)

// createTenant makes a tenant in organization o1 and returns its name.
func createTenant(h *harness, display string, labels ...string) string {
	h.t.Helper()
	args := []string{"tenant", "create", "--org", "o1", "--entra-tenant-id", "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f", "--display-name", display, "-o", "name"}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	name := strings.TrimSpace(h.ok("", args...).stdout)
	if !strings.HasPrefix(name, "organizations/o1/tenants/") || strings.Contains(name, "\n") {
		h.t.Fatalf("-o name printed %q, want one tenant name", name)
	}
	return name
}

func TestOutputName(t *testing.T) {
	h := newHarness(t)
	a := createTenant(h, "A")
	b := createTenant(h, "B")

	if got := h.ok("", "tenant", "get", a, "-o", "name").stdout; got != a+"\n" {
		t.Errorf("get -o name = %q, want %q", got, a+"\n")
	}
	if got := h.ok("", "tenant", "list", "--org", "o1", "-o", "name").stdout; got != a+"\n"+b+"\n" {
		t.Errorf("list -o name = %q, want both names", got)
	}
	// An empty list prints nothing on stdout.
	if r := h.ok("", "tenant", "list", "--org", "o2", "-o", "name"); r.stdout != "" {
		t.Errorf("empty list -o name = %q", r.stdout)
	}
	// A response wrapping the resource prints the resource's name.
	key := strings.TrimSpace(h.ok("", "apikey", "create", "--org", "o1", "--display-name", "k", "--role", "viewer", "-o", "name").stdout)
	if !strings.HasPrefix(key, "organizations/o1/apiKeys/") {
		t.Errorf("apikey create -o name = %q", key)
	}
	if got := h.ok("", "tenant", "delete", b, "-o", "name").stdout; got != b+"\n" {
		t.Errorf("delete -o name = %q", got)
	}
}

func TestOutputYAML(t *testing.T) {
	h := newHarness(t)
	name := createTenant(h, "Fabrikam", "tier=gold")
	got := h.ok("", "tenant", "get", name, "-o", "yaml").stdout
	want := "name: " + name + "\n" +
		"entraTenantId: 0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f\n" +
		"cloud: CLOUD_GLOBAL\n" +
		"displayName: Fabrikam\n" +
		"labels:\n  tier: gold\n" +
		"createTime: \"2026-11-26T04:00:00Z\"\n" +
		"updateTime: \"2026-11-26T04:00:00Z\"\n" +
		"etag: e1\n"
	if got != want {
		t.Errorf("-o yaml:\n%s\nwant:\n%s", got, want)
	}
	if got := h.ok("", "tenant", "delete", name, "-o", "yaml").stdout; got != "name: "+name+"\n" {
		t.Errorf("delete -o yaml = %q", got)
	}
}

func TestFieldSelection(t *testing.T) {
	h := newHarness(t)
	a := createTenant(h, "A", "tier=gold")
	b := createTenant(h, "B")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"string", []string{"tenant", "get", a, "--field", "displayName"}, "A\n"},
		{"proto spelling", []string{"tenant", "get", a, "--field", "display_name"}, "A\n"},
		{"enum", []string{"tenant", "get", a, "--field", "cloud"}, "CLOUD_GLOBAL\n"},
		{"timestamp", []string{"tenant", "get", a, "--field", "createTime"}, "2026-11-26T04:00:00Z\n"},
		{"map key", []string{"tenant", "get", a, "--field", "labels.tier"}, "gold\n"},
		{"map key unset", []string{"tenant", "get", b, "--field", "labels.tier"}, "\n"},
		{"whole map", []string{"tenant", "get", a, "--field", "labels"}, `{"tier":"gold"}` + "\n"},
		{"unset message", []string{"tenant", "get", a, "--field", "provisionerConsentTime"}, "\n"},
		{"list fans out", []string{"tenant", "list", "--org", "o1", "--field", "tenants.name"}, a + "\n" + b + "\n"},
		{"with -o json too", []string{"tenant", "list", "--org", "o1", "-o", "json", "--field", "tenants.displayName"}, "A\nB\n"},
		{"nested in a response", []string{"apikey", "create", "--org", "o1", "--display-name", "k", "--role", "viewer", "--field", "apiKey.role"}, "ROLE_VIEWER\n"},
		{"delete", []string{"tenant", "delete", b, "--field", "name"}, b + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.ok("", tt.args...).stdout; got != tt.want {
				t.Errorf("dzctl %v = %q, want %q", tt.args, got, tt.want)
			}
		})
	}

	// The secret of a new key, for a script to store: the one place a
	// secret is printed, and only on request.
	if got := h.ok("", "apikey", "create", "--org", "o1", "--display-name", "k2", "--role", "viewer", "--field", "secret").stdout; got != fakeAPIKeySecret+"\n" {
		t.Errorf("--field secret = %q", got)
	}

	// A field that does not exist is an error naming the fields there are.
	r := h.run("", "tenant", "get", a, "--field", "displayname")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, `Tenant has no field "displayname"`) || !strings.Contains(r.stderr, "displayName") {
		t.Errorf("unknown field: exit %d, stderr %q", r.code, r.stderr)
	}
	r = h.run("", "tenant", "get", a, "--field", "displayName.x")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, `it has no field "x"`) {
		t.Errorf("path through a string: exit %d, stderr %q", r.code, r.stderr)
	}
	// An empty list still checks the path.
	r = h.run("", "tenant", "list", "--org", "o9", "--field", "tenants.nope")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, `has no field "nope"`) {
		t.Errorf("empty list, bad path: exit %d, stderr %q", r.code, r.stderr)
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigContexts(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "dzctl", "config.yaml")
	h.env = map[string]string{cli.EnvConfig: cfgPath, "HOME": dir} // no DZCONNECT_* variables
	writeFile(t, dir, "ctx.key", "dzk_from_context_file\n")

	// No file yet: get-contexts says so, and commands run without a context.
	if r := h.ok("", "config", "get-contexts"); !strings.Contains(r.stderr, "No contexts found") {
		t.Errorf("get-contexts without a file: %q", r.stderr)
	}
	h.ok("", "config", "set-context", "local", "--addr", "passthrough:///bufnet", "--api-key-file", "../ctx.key", "--org", "organizations/o1")
	h.ok("", "config", "set-context", "other", "--addr", "passthrough:///other", "--api-key", "dzk_other_in_file")
	if st, err := os.Stat(cfgPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v; want 0600", err, st.Mode())
	}
	// The first context made became the current one.
	if got := h.ok("", "config", "current-context").stdout; got != "local\n" {
		t.Errorf("current-context = %q", got)
	}
	table := h.ok("", "config", "get-contexts").stdout
	for _, want := range []string{"CURRENT  NAME", "*        local  passthrough:///bufnet", "o1", "key file ../ctx.key", "key in config"} {
		if !strings.Contains(table, want) {
			t.Errorf("get-contexts lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "dzk_other_in_file") {
		t.Errorf("get-contexts printed a key:\n%s", table)
	}
	if js := h.ok("", "config", "get-contexts", "-o", "json").stdout; strings.Contains(js, "dzk_other_in_file") || !strings.Contains(js, `"currentContext": "local"`) {
		t.Errorf("get-contexts -o json:\n%s", js)
	}
	if got := h.ok("", "config", "get-contexts", "-o", "name").stdout; got != "local\nother\n" {
		t.Errorf("get-contexts -o name = %q", got)
	}

	// The context gives the address, the key (from its file, relative to
	// the config file) and the default --org.
	h.ok("", "tenant", "list")
	calls := h.srv.callsOf("ListTenants")
	if len(calls) != 1 || calls[0].req.(*dzconnectv1.ListTenantsRequest).GetParent() != "organizations/o1" {
		t.Fatalf("ListTenants calls: %v", calls)
	}
	if got := calls[0].md.Get("authorization"); len(got) != 1 || got[0] != "Bearer dzk_from_context_file" {
		t.Errorf("authorization = %q, want the context's key", got)
	}

	// Environment beats the context, flags beat both.
	h.env[cli.EnvAPIKey] = "dzk_from_env"
	h.env[cli.EnvOrg] = "o2"
	h.ok("", "tenant", "list")
	h.ok("", "tenant", "list", "--api-key", "dzk_from_flag", "--org", "o3")
	calls = h.srv.callsOf("ListTenants")
	if len(calls) != 3 {
		t.Fatalf("got %d ListTenants calls", len(calls))
	}
	for i, want := range []struct{ key, parent string }{{"dzk_from_env", "organizations/o2"}, {"dzk_from_flag", "organizations/o3"}} {
		c := calls[i+1]
		if got := c.md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+want.key || c.req.(*dzconnectv1.ListTenantsRequest).GetParent() != want.parent {
			t.Errorf("call %d: authorization %q parent %q, want %s %s", i+1, got, c.req.(*dzconnectv1.ListTenantsRequest).GetParent(), want.key, want.parent)
		}
	}
	delete(h.env, cli.EnvAPIKey)
	delete(h.env, cli.EnvOrg)

	// --tenant is not overridden by the context's organization.
	h.ok("", "integration", "list", "--tenant", "organizations/o1/tenants/t1")

	// Switching: "other" points at an address nothing listens on; --context
	// picks a context for one call, DZCTL_CONTEXT for a shell.
	h.ok("", "config", "use-context", "other")
	if got := h.ok("", "config", "current-context").stdout; got != "other\n" {
		t.Errorf("after use-context: %q", got)
	}
	h.ok("", "--context", "local", "tenant", "list")
	h.env[cli.EnvCtx] = "local"
	h.ok("", "tenant", "list")
	delete(h.env, cli.EnvCtx)
	if n := len(h.srv.callsOf("ListTenants")); n != 5 {
		t.Errorf("got %d ListTenants calls, want 5", n)
	}

	// Errors: unknown context names, a broken file.
	if r := h.run("", "config", "use-context", "nope"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, `context "nope" is not in`) {
		t.Errorf("use-context nope: %d %q", r.code, r.stderr)
	}
	h.ok("", "config", "delete-context", "other") // the current one: none is current now
	if r := h.run("", "config", "current-context"); r.code != cli.ExitError || !strings.Contains(r.stderr, "no current-context") {
		t.Errorf("current-context after deleting it: %d %q", r.code, r.stderr)
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(cfgPath), "config.yaml", "current-context: ghost\n"+string(raw))
	if r := h.run("", "tenant", "list", "--org", "o1"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, `current-context "ghost" is not in the config file`) {
		t.Errorf("dangling current-context: %d %q", r.code, r.stderr)
	}
	h.ok("", "config", "use-context", "local") // config commands still work
	writeFile(t, filepath.Dir(cfgPath), "config.yaml", "contexts:\n  - name: x\n    hostname: typo\n")
	if r := h.run("", "tenant", "list", "--org", "o1"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "field hostname not found") {
		t.Errorf("typo in the config file: %d %q", r.code, r.stderr)
	}
}

func TestConfigDefaultPath(t *testing.T) {
	h := newHarness(t)
	home := t.TempDir()
	h.env = map[string]string{"HOME": home}
	h.ok("", "config", "set-context", "dev", "--addr", "127.0.0.1:9090")
	if _, err := os.Stat(filepath.Join(home, ".config", "dzctl", "config.yaml")); err != nil {
		t.Errorf("~/.config/dzctl/config.yaml: %v", err)
	}
	xdg := t.TempDir()
	h.env["XDG_CONFIG_HOME"] = xdg
	h.ok("", "config", "set-context", "dev", "--addr", "127.0.0.1:9090")
	if _, err := os.Stat(filepath.Join(xdg, "dzctl", "config.yaml")); err != nil {
		t.Errorf("$XDG_CONFIG_HOME/dzctl/config.yaml: %v", err)
	}
}

func TestCompletion(t *testing.T) {
	h := newHarness(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := h.ok("", "completion", shell)
		if !strings.Contains(r.stdout, "dzctl") || len(r.stdout) < 500 {
			t.Errorf("completion %s: %d bytes", shell, len(r.stdout))
		}
	}
	// What the shell scripts ask dzctl: subcommands, flag values, contexts.
	if got := h.ok("", "__complete", "tenant", "").stdout; !strings.Contains(got, "create") || !strings.Contains(got, "list") {
		t.Errorf("complete tenant: %q", got)
	}
	if got := h.ok("", "__complete", "-o", "").stdout; !strings.Contains(got, "yaml\nname\n") {
		t.Errorf("complete -o: %q", got)
	}
	dir := t.TempDir()
	h.env[cli.EnvConfig] = filepath.Join(dir, "config.yaml")
	h.ok("", "config", "set-context", "prod", "--addr", "x:1")
	if got := h.ok("", "__complete", "config", "use-context", "").stdout; !strings.HasPrefix(got, "prod\n") {
		t.Errorf("complete use-context: %q", got)
	}
	if got := h.ok("", "__complete", "--context", "").stdout; !strings.HasPrefix(got, "prod\n") {
		t.Errorf("complete --context: %q", got)
	}
	// A broken config file does not stop the completion script.
	writeFile(t, dir, "config.yaml", "current-context: gone\n")
	h.ok("", "completion", "bash")
}

// TestContextTLS: a context's ca-file (relative to the config file) makes
// the connection TLS; --tls on the command line decides alone.
func TestContextTLS(t *testing.T) {
	t.Parallel()
	caFile, cert := selfSignedCert(t)
	h := newHarness(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	dir := t.TempDir()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "ca.pem", string(ca))
	h.env = map[string]string{cli.EnvConfig: filepath.Join(dir, "config.yaml"), cli.EnvAPIKey: testAPIKey}
	h.ok("", "config", "set-context", "tls", "--addr", "passthrough:///localhost", "--ca-file", "ca.pem")
	h.ok("", "org", "list")
	// --tls alone (system roots) does not trust the test CA: the flag won.
	if r := h.run("", "--tls", "--timeout", "5s", "org", "list"); r.code != cli.ExitError || !strings.Contains(r.stderr, "Unavailable") {
		t.Errorf("--tls over the context's ca-file: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := h.srv.callsOf("ListOrganizations"); len(got) != 1 {
		t.Errorf("got %d calls over TLS, want 1", len(got))
	}
}

// TestOperationWaitMachineOutput: with -o name or --field, progress lines
// go to standard error and standard output holds only the result.
func TestOperationWaitMachineOutput(t *testing.T) {
	for _, args := range [][]string{{"-o", "name"}, {"--field", "name"}} {
		f := &fakeOperations{waits: []*dzconnectv1.Operation{
			fakeOperation("1", dzconnectv1.OperationState_OPERATION_STATE_RUNNING, 0,
				dzconnectv1.StepState_STEP_STATE_RUNNING, dzconnectv1.StepState_STEP_STATE_PENDING, dzconnectv1.StepState_STEP_STATE_PENDING),
			fakeOperation("2", dzconnectv1.OperationState_OPERATION_STATE_SUCCEEDED, 3,
				dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_SUCCEEDED),
		}}
		r := runOperationCLI(t, f, append([]string{"operation", "wait", fakeOp}, args...)...)
		if r.code != 0 || r.stdout != fakeOp+"\n" || !strings.Contains(r.stderr, "register-app: running") {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
}
