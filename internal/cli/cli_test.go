package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
)

func TestAPIKeyReachesMetadata(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want []string // authorization metadata values
	}{
		{name: "from env", env: testAPIKey, want: []string{"Bearer " + testAPIKey}},
		{name: "flag overrides env", env: "env-key", args: []string{"--api-key", testAPIKey}, want: []string{"Bearer " + testAPIKey}},
		{name: "none", env: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.env[cli.EnvAPIKey] = tt.env
			h.ok("", append(tt.args, "org", "list")...)
			calls := h.srv.callsOf("ListOrganizations")
			if len(calls) != 1 {
				t.Fatalf("got %d ListOrganizations calls, want 1", len(calls))
			}
			got := calls[0].md.Get("authorization")
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("authorization metadata = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAPIKeyNotInHelp(t *testing.T) {
	h := newHarness(t)
	// run() fails the test if the key from the environment is printed.
	r := h.ok("", "--help")
	if !strings.Contains(r.stdout, "--api-key") {
		t.Errorf("help does not mention --api-key:\n%s", r.stdout)
	}
	h.ok("", "integration", "create", "--help")
}

func TestAddrFromEnvAndFlag(t *testing.T) {
	h := newHarness(t)
	// The env address reaches the fake; a bogus flag address overrides it.
	h.ok("", "org", "list")
	h.env[cli.EnvAddr] = "passthrough:///elsewhere" // still bufconn: the dialer ignores the address
	h.ok("", "--addr", "passthrough:///bufnet", "org", "list")
	if n := len(h.srv.callsOf("ListOrganizations")); n != 2 {
		t.Errorf("got %d calls, want 2", n)
	}
}

func TestErrorRendering(t *testing.T) {
	h := newHarness(t)
	st, err := status.New(codes.InvalidArgument, "invalid tenant").WithDetails(
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "tenant.entra_tenant_id", Description: "must be a GUID"},
			{Field: "tenant.display_name", Description: "must be 1 to 200 characters"},
		}},
		&errdetails.ErrorInfo{Reason: "INVALID_TENANT", Domain: "dzconnect.dropzone.ai"},
	)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.failNext("CreateTenant", st.Err())
	r := h.run("", "tenant", "create", "--org", "o1", "--entra-tenant-id", "nope", "--display-name", "x")
	if r.code != cli.ExitError {
		t.Errorf("exit code = %d, want %d", r.code, cli.ExitError)
	}
	want := "Error: InvalidArgument: invalid tenant\n" +
		"  tenant.entra_tenant_id: must be a GUID\n" +
		"  tenant.display_name: must be 1 to 200 characters\n" +
		"  (reason: INVALID_TENANT)\n"
	if r.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want empty", r.stdout)
	}
}

func TestNotFoundError(t *testing.T) {
	h := newHarness(t)
	r := h.run("", "org", "get", "organizations/missing")
	if r.code != cli.ExitError || r.stderr != "Error: NotFound: organizations/missing not found\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUnavailableIsRetriedWithSameRequestID(t *testing.T) {
	h := newHarness(t)
	h.srv.failNext("CreateTenant", status.Error(codes.Unavailable, "vault down"))
	h.ok("", "tenant", "create", "--org", "o1", "--entra-tenant-id", "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f", "--display-name", "Fabrikam")
	calls := h.srv.callsOf("CreateTenant")
	if len(calls) != 2 {
		t.Fatalf("got %d CreateTenant calls, want 2 (one retry)", len(calls))
	}
	first := calls[0].req.(*dzconnectv1.CreateTenantRequest).GetRequestId()
	second := calls[1].req.(*dzconnectv1.CreateTenantRequest).GetRequestId()
	if first == "" || first != second {
		t.Errorf("request IDs %q and %q: want the same, non-empty", first, second)
	}
	// A new invocation gets a new request ID.
	h.ok("", "tenant", "create", "--org", "o1", "--entra-tenant-id", "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f", "--display-name", "Fabrikam")
	calls = h.srv.callsOf("CreateTenant")
	if third := calls[2].req.(*dzconnectv1.CreateTenantRequest).GetRequestId(); third == first {
		t.Errorf("second invocation reused request ID %q", third)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus" for "dzctl"`},
		{"unknown subcommand", []string{"org", "bogus"}, `unknown command "bogus" for "dzctl org"`},
		{"unknown flag", []string{"org", "list", "--bogus"}, "unknown flag: --bogus"},
		{"missing arg", []string{"org", "get"}, "expected 1 argument(s) ORG, got 0"},
		{"extra arg", []string{"org", "list", "x"}, `unexpected argument "x"`},
		{"bad output", []string{"-o", "xml", "org", "list"}, `invalid --output "xml": want table, json, yaml, name`},
		{"bad field", []string{"--field", "tenant..name", "org", "list"}, `invalid --field "tenant..name"`},
		{"field with -o name", []string{"--field", "name", "-o", "name", "org", "list"}, `--field and -o name cannot be used together`},
		{"unknown context", []string{"--context", "nope", "org", "list"}, `context "nope" is not in the config file`},
		{"missing required", []string{"org", "create"}, "required flag(s) --display-name not set"},
		{"bad name", []string{"tenant", "get", "organizations/o1"}, `invalid tenant "organizations/o1": want organizations/ORG/tenants/TENANT`},
		{"bad role", []string{"apikey", "create", "--org", "o1", "--display-name", "k", "--role", "root"}, `invalid --role "root": want one of admin, operator, viewer`},
		{"bad cloud", []string{"tenant", "create", "--org", "o1", "--entra-tenant-id", "g", "--display-name", "d", "--cloud", "mars"}, `invalid --cloud "mars"`},
		{"bad label", []string{"tenant", "create", "--org", "o1", "--entra-tenant-id", "g", "--display-name", "d", "--label", "novalue"}, `want KEY=VALUE`},
		{"bad time", []string{"apikey", "create", "--org", "o1", "--display-name", "k", "--role", "viewer", "--expire-time", "tomorrow"}, "want an RFC 3339 time"},
		{"nothing to update", []string{"org", "update", "o1"}, "nothing to update"},
		{"list needs parent", []string{"integration", "list"}, "at least one of the flags in the group [tenant org] is required"},
		{"list one parent", []string{"integration", "list", "--org", "o", "--tenant", "organizations/o/tenants/t"}, "none of the others can be"},
		{"bad state", []string{"integration", "list", "--org", "o", "--state", "sad"}, `invalid --state "sad"`},
		{"bad page size", []string{"org", "list", "--page-size", "5000"}, "invalid --page-size 5000"},
		{"partial sentinel", []string{"integration", "update", "organizations/o/tenants/t/integrations/i", "--workspace-name", "w"}, "also give --subscription-id, --resource-group, --workspace-id"},
		{"bad request id", []string{"org", "create", "--display-name", "x", "--request-id", "retry-1"}, `invalid --request-id "retry-1": want a UUID`},
		{"secret as flag", []string{"integration", "create", "--client-secret", "hunter2-secret-value"}, "--client-secret is not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.run("", tt.args...)
			if r.code != cli.ExitUsage {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", r.code, cli.ExitUsage, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr:\n%s\nwant it to contain %q", r.stderr, tt.wantErr)
			}
			if !strings.Contains(r.stderr, "--help' for usage.") {
				t.Errorf("stderr lacks the usage hint:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr repeats a secret flag value:\n%s", r.stderr)
			}
			if calls := h.srv.allCalls(); len(calls) != 0 {
				t.Errorf("usage error still made %d call(s), first %s", len(calls), calls[0].method)
			}
		})
	}
}

func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	h := newHarness(t)
	r := h.ok("", "tenant")
	if !strings.Contains(r.stdout, "Available Commands:") || !strings.Contains(r.stdout, "create") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
}

func TestTimeout(t *testing.T) {
	h := newHarness(t)
	// A listener nobody accepts on: the dial hangs until the deadline.
	h.lis = bufconn.Listen(1 << 20)
	r := h.run("", "--timeout", "50ms", "org", "list")
	if r.code != cli.ExitError || !strings.HasPrefix(r.stderr, "Error: DeadlineExceeded: ") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	caFile, cert := selfSignedCert(t)
	h := newHarness(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	h.env[cli.EnvAddr] = "passthrough:///localhost"

	h.ok("", "--ca-file", caFile, "org", "list")
	h.ok("", "--tls", "--insecure-skip-verify", "org", "list")
	// Without the CA the certificate is not trusted; in plaintext the
	// handshake fails.
	for _, args := range [][]string{{"--tls"}, {}} {
		r := h.run("", append(args, "--timeout", "5s", "org", "list")...)
		t.Logf("%v: %s", args, r.stderr)
		if r.code != cli.ExitError || !strings.Contains(r.stderr, "Unavailable") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if got := h.srv.callsOf("ListOrganizations"); len(got) != 2 {
		t.Errorf("got %d calls over TLS, want 2", len(got))
	}
}

func TestJSONOutputIsStable(t *testing.T) {
	h := newHarness(t)
	h.ok("", "tenant", "create", "--org", "o1", "--entra-tenant-id", "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f",
		"--display-name", "Fabrikam", "--label", "b=2", "--label", "a=1")
	first := h.ok("", "-o", "json", "tenant", "get", "organizations/o1/tenants/t-1").stdout
	for range 5 {
		if again := h.ok("", "-o", "json", "tenant", "get", "organizations/o1/tenants/t-1").stdout; again != first {
			t.Fatalf("JSON output changed:\n%s\nvs\n%s", first, again)
		}
	}
	want := `{
  "name": "organizations/o1/tenants/t-1",
  "entraTenantId": "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f",
  "cloud": "CLOUD_GLOBAL",
  "displayName": "Fabrikam",
  "labels": {
    "a": "1",
    "b": "2"
  },
  "createTime": "2026-11-26T04:00:00Z",
  "updateTime": "2026-11-26T04:00:00Z",
  "etag": "e1"
}
`
	if first != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", first, want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(first), &v); err != nil {
		t.Errorf("not JSON: %v", err)
	}
}

// selfSignedCert writes a self-signed certificate for localhost to a temp
// file and returns the file and the certificate with its key.
func selfSignedCert(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, cert
}
