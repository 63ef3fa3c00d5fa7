package vault

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// Tracing (docs/observability.md): each HTTP request to Vault made inside a
// traced call or job is a client span "vault <operation>" ("vault kv
// read", "vault kv write", "vault kv destroy", "vault login", ...), with
// the KV mount, the operation and the path (it names organization,
// integration and credential IDs, nothing secret), the method, server
// address and status code. Never recorded: the X-Vault-Token header, the
// request and response bodies (secret values, AppRole secret IDs, issued
// tokens), the query string. The W3C traceparent is sent along (Vault is
// ours; it ignores it unless its own tracing is configured).

// Attribute keys of Vault client spans.
const (
	AttrMount     = attribute.Key("vault.mount")
	AttrOperation = attribute.Key("vault.operation")
)

// tracingTransport wraps next with a client span per request.
func tracingTransport(next http.RoundTripper, mount string) http.RoundTripper {
	mount = strings.Trim(mount, "/")
	return &telemetry.ClientTransport{
		Next:   next,
		Inject: true,
		Describe: func(req *http.Request) (string, []attribute.KeyValue) {
			m, op := operation(req.Method, req.URL.Path, mount)
			attrs := []attribute.KeyValue{AttrOperation.String(op)}
			if m != "" {
				attrs = append(attrs, AttrMount.String(m))
			}
			return "vault " + op, attrs
		},
		// Only KV paths are recorded: a path elsewhere could hold a
		// token (auth/token/lookup/<token>, the legacy form).
		Path: func(req *http.Request) string {
			if m, _ := operation(req.Method, req.URL.Path, mount); m != "" {
				return req.URL.Path
			}
			return ""
		},
	}
}

// operation names a Vault request: on the KV v2 mount, "kv <read|write|
// delete|destroy|...>" by the path's second segment (data, metadata,
// destroy, delete, undelete) and the method; elsewhere "login",
// "token <action>", "health", or the method.
func operation(method, path, mount string) (kvMount, op string) {
	p := strings.TrimPrefix(path, "/v1/")
	if mount != "" {
		if rest, ok := strings.CutPrefix(p, mount+"/"); ok {
			kind, _, _ := strings.Cut(rest, "/")
			verb := map[string]string{http.MethodGet: "read", http.MethodPut: "write", http.MethodPost: "write",
				http.MethodPatch: "patch", http.MethodDelete: "delete", "LIST": "list"}[method]
			if verb == "" {
				verb = strings.ToLower(method)
			}
			switch kind {
			case "data":
				return mount, "kv " + verb
			case "metadata":
				return mount, "kv metadata " + verb
			case "destroy", "delete", "undelete":
				return mount, "kv " + kind
			}
			return mount, "kv " + verb
		}
	}
	switch {
	case strings.HasPrefix(p, "auth/") && strings.HasSuffix(p, "/login"):
		return "", "login"
	case strings.HasPrefix(p, "auth/token/"):
		switch a := strings.TrimPrefix(p, "auth/token/"); a {
		case "lookup-self", "renew-self", "revoke-self":
			return "", "token " + a
		}
		return "", "token"
	case p == "sys/health":
		return "", "health"
	}
	return "", strings.ToLower(method)
}
