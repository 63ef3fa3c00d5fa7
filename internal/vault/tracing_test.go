package vault

import "testing"

func TestOperationNames(t *testing.T) {
	for _, c := range []struct{ method, path, mount, op string }{
		{"GET", "/v1/secret/data/dzconnect/organizations/o/x", "secret", "kv read"},
		{"PUT", "/v1/kv/team/data/p", "kv/team", "kv write"},
		{"GET", "/v1/secret/metadata/p", "secret", "kv metadata read"},
		{"DELETE", "/v1/secret/metadata/p", "secret", "kv metadata delete"},
		{"PUT", "/v1/secret/destroy/p", "secret", "kv destroy"},
		{"PUT", "/v1/auth/approle/login", "secret", "login"},
		{"GET", "/v1/auth/token/lookup-self", "secret", "token lookup-self"},
		{"POST", "/v1/auth/token/lookup/s.hunter2", "secret", "token"},
		{"GET", "/v1/sys/health", "secret", "health"},
	} {
		m, op := operation(c.method, c.path, c.mount)
		if op != c.op {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, op, c.op)
		}
		if (m != "") != (op[:2] == "kv") {
			t.Errorf("%s %s: mount %q", c.method, c.path, m)
		}
	}
}
