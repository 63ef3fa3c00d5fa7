package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func load(args []string, env map[string]string) (Config, error) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Load(fs, args, func(k string) string { return env[k] })
}

func TestDefaultsAndPrecedence(t *testing.T) {
	env := map[string]string{"DZCONNECT_DATABASE_URL": "postgres://db/x", "DZCONNECT_VAULT_ADDR": "https://v:8200",
		"DZCONNECT_VAULT_TOKEN": "t", "DZCONNECT_GRPC_ADDR": "0.0.0.0:1"}
	c, err := load([]string{"--grpc-addr", "127.0.0.1:2", "--jobs=false"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:2" || c.HTTPAddr != "127.0.0.1:8080" || c.Jobs || c.VaultMount != "secret" {
		t.Fatalf("config %+v", c)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	_, err := load([]string{"--admin-key", "short", "--log-level", "loud", "--tls-cert-file", "x"}, nil)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"database-url", "vault-addr", "vault-token", "admin-key", "log-level", "tls-cert-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name --%s:\n%v", want, err)
		}
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	_, err := load([]string{"--database-url", "mysql://u:hunter2@h/db", "--vault-token", "s.hunter3"}, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hunter3") {
		t.Fatalf("error %v", err)
	}
}

// TestSecretsNotInUsage: -h and a parse error print every flag with its
// default; secrets set in the environment must not be among them.
func TestSecretsNotInUsage(t *testing.T) {
	env := map[string]string{"DZCONNECT_DATABASE_URL": "postgres://u:hunter2@db/x", "DZCONNECT_VAULT_ADDR": "https://v:8200",
		"DZCONNECT_VAULT_TOKEN": "s.hunter3", "DZCONNECT_VAULT_SECRET_ID": "hunter4",
		"DZCONNECT_ADMIN_KEY": "dzk_hunter5hunter5hunter5hunter5hunter5", "DZCONNECT_LOG_LEVEL": "warn"}
	for _, args := range [][]string{{"-h"}, {"--no-such-flag"}, {"--jobs=maybe"}} {
		var out bytes.Buffer
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(&out)
		_, err := Load(fs, args, func(k string) string { return env[k] })
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		if args[0] == "-h" && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("-h: %v", err)
		}
		text := out.String() + err.Error()
		for _, secret := range []string{"hunter2", "hunter3", "hunter4", "hunter5"} {
			if strings.Contains(text, secret) {
				t.Errorf("%v: usage shows a secret (%s):\n%s", args, secret, text)
			}
		}
		// Non-secret values from the environment are still shown as the
		// defaults in effect (the usage test would pass vacuously if
		// nothing were printed).
		if args[0] != "--jobs=maybe" && !strings.Contains(text, "(default warn)") {
			t.Errorf("%v: usage does not show the environment's log level:\n%s", args, text)
		}
	}
}

// TestPlaintextOnlyOnLoopback: without TLS, a listener on another
// interface needs allow-plaintext (issue 11 item 12g).
func TestPlaintextOnlyOnLoopback(t *testing.T) {
	env := map[string]string{"DZCONNECT_DATABASE_URL": "postgres://db/x", "DZCONNECT_VAULT_ADDR": "https://v:8200", "DZCONNECT_VAULT_TOKEN": "t"}
	for _, tc := range []struct {
		args []string
		bad  string // the flag named in the error, "" when accepted
	}{
		{nil, ""},
		{[]string{"--grpc-addr", "[::1]:9090", "--http-addr", "localhost:8080"}, ""},
		{[]string{"--grpc-addr", "0.0.0.0:9090"}, "grpc-addr"},
		{[]string{"--http-addr", ":8080"}, "http-addr"},
		{[]string{"--http-addr", "10.1.2.3:8080"}, "http-addr"},
		{[]string{"--grpc-addr", "0.0.0.0:9090", "--http-addr", ":8080", "--allow-plaintext"}, ""},
		{[]string{"--grpc-addr", "0.0.0.0:9090", "--tls-cert-file", "c.pem", "--tls-key-file", "k.pem"}, ""},
	} {
		_, err := load(tc.args, env)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), "--"+tc.bad+":")):
			t.Errorf("%v: error %v, want one naming --%s", tc.args, err, tc.bad)
		}
	}
}

// TestVaultTransport: Vault over https, plain http only on loopback,
// certificate checks never off, unless vault-allow-insecure (issue 11
// item 12f).
func TestVaultTransport(t *testing.T) {
	base := map[string]string{"DZCONNECT_DATABASE_URL": "postgres://db/x", "DZCONNECT_VAULT_TOKEN": "t"}
	for _, tc := range []struct {
		addr, skip string
		args       []string
		ok         bool
	}{
		{"https://vault.internal:8200", "", nil, true},
		{"http://127.0.0.1:8200", "", nil, true},
		{"http://localhost:8200", "", nil, true},
		{"http://vault:8200", "", nil, false},
		{"http://vault:8200", "", []string{"--vault-allow-insecure"}, true},
		{"https://vault.internal:8200", "true", nil, false},
		{"https://vault.internal:8200", "1", []string{"--vault-allow-insecure"}, true},
		{"https://vault.internal:8200", "false", nil, true},
	} {
		env := map[string]string{"DZCONNECT_VAULT_ADDR": tc.addr, "VAULT_SKIP_VERIFY": tc.skip}
		for k, v := range base {
			env[k] = v
		}
		_, err := load(tc.args, env)
		if (err == nil) != tc.ok {
			t.Errorf("%s skip=%q %v: error %v, want ok=%v", tc.addr, tc.skip, tc.args, err, tc.ok)
		}
	}
}

func TestAuthAndListenerFlags(t *testing.T) {
	env := map[string]string{"DZCONNECT_DATABASE_URL": "postgres://db/x", "DZCONNECT_VAULT_ADDR": "https://v:8200", "DZCONNECT_VAULT_TOKEN": "t"}
	c, err := load(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.InternalAddr != "127.0.0.1:9091" || c.OIDCOrgClaim != "dzconnect_org" || c.OIDCRoleClaim != "dzconnect_role" {
		t.Fatalf("defaults %+v", c)
	}
	if _, err := load([]string{"--internal-addr", "off"}, env); err != nil {
		t.Fatalf("internal listener off: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--internal-addr", "0.0.0.0:9091"}, "internal-addr"},
		{[]string{"--internal-addr", "nope"}, "internal-addr"},
		{[]string{"--tls-client-ca", "ca.pem"}, "tls-client-ca"},
		{[]string{"--oidc-issuer", "http://issuer"}, "oidc-issuer"},
		{[]string{"--oidc-issuer", "https://issuer"}, "oidc-audience"},
		{[]string{"--oidc-audience", "x"}, "oidc-issuer"},
	} {
		_, err := load(tc.args, env)
		if err == nil || !strings.Contains(err.Error(), "--"+tc.want) {
			t.Errorf("%v: %v, want an error naming --%s", tc.args, err, tc.want)
		}
	}
}

func TestTracingFlags(t *testing.T) {
	base := []string{"--database-url", "postgres://db/x", "--vault-addr", "https://v:8200", "--vault-token", "t"}
	c, err := load(base, nil)
	if err != nil || c.OTLPEndpoint != "" || c.OTLPProtocol != "grpc" || c.OTLPInsecure || c.TraceSampleRatio != 1 {
		t.Fatalf("defaults %+v %v", c, err)
	}
	for _, ok := range [][]string{
		{"--otlp-endpoint", "collector:4317"},
		{"--otlp-endpoint", "https://collector:4318/v1/traces", "--otlp-protocol", "http"},
		{"--otlp-endpoint", "127.0.0.1:4317", "--otlp-insecure"},
		{"--otlp-endpoint", "http://localhost:4318", "--otlp-protocol", "http"},
		{"--otlp-endpoint", "collector:4317", "--otlp-insecure", "--allow-plaintext"},
		{"--trace-sample-ratio", "0.25"},
	} {
		if _, err := load(append(append([]string{}, base...), ok...), nil); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
	for flag, bad := range map[string][]string{
		"otlp-insecure":      {"--otlp-endpoint", "collector:4317", "--otlp-insecure"},
		"otlp-insecure ":     {"--otlp-endpoint", "http://collector:4318"},
		"otlp-insecure  ":    {"--otlp-endpoint", "https://collector:4318", "--otlp-insecure"},
		"otlp-endpoint":      {"--otlp-endpoint", "collector"},
		"otlp-endpoint ":     {"--otlp-endpoint", "ftp://collector:21"},
		"otlp-protocol":      {"--otlp-protocol", "udp"},
		"trace-sample-ratio": {"--trace-sample-ratio", "1.5"},
	} {
		_, err := load(append(append([]string{}, base...), bad...), nil)
		if err == nil || !strings.Contains(err.Error(), "--"+strings.TrimSpace(flag)) {
			t.Errorf("%v: error %v does not name --%s", bad, err, strings.TrimSpace(flag))
		}
	}
}
