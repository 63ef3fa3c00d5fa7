package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// rest is a tiny JSON client for the gateway.
type rest struct {
	t    *testing.T
	base string
	key  string
}

func (r rest) do(method, path string, body any, hdr ...string) (int, map[string]any, http.Header) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			r.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func TestREST(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	admin := rest{t, s.HTTPURL, s.AdminKey}

	code, body, hdr := admin.do("POST", "/v1/organizations?request_id="+uuid.NewString(), map[string]any{"displayName": "REST MSSP"}, "X-Request-Id", "trace-123")
	if code != 200 || hdr.Get("X-Request-Id") != "trace-123" {
		t.Fatalf("create org: %d %v request-id %q", code, body, hdr.Get("X-Request-Id"))
	}
	org := body["organization"].(map[string]any)["name"].(string)

	code, body, _ = admin.do("POST", "/v1/"+org+"/apiKeys", map[string]any{"displayName": "ops", "role": "ROLE_OPERATOR"})
	if code != 200 || !strings.HasPrefix(body["secret"].(string), "dzk_") {
		t.Fatalf("create key: %d %v", code, body)
	}
	op := rest{t, s.HTTPURL, body["secret"].(string)}

	// Field violations come back as google.rpc.BadRequest details.
	code, body, _ = op.do("POST", "/v1/"+org+"/tenants", map[string]any{"entraTenantId": "nope", "cloud": "CLOUD_GLOBAL", "displayName": "x"})
	if code != 400 || !strings.Contains(mustJSON(t, body), `"field":"tenant.entra_tenant_id"`) {
		t.Fatalf("invalid tenant: %d %s", code, mustJSON(t, body))
	}
	code, body, _ = op.do("POST", "/v1/"+org+"/tenants", map[string]any{"entraTenantId": uuid.NewString(), "cloud": "CLOUD_GLOBAL", "displayName": "Contoso"})
	if code != 200 {
		t.Fatalf("create tenant: %d %v", code, body)
	}
	tenant := body["tenant"].(map[string]any)
	tname, etag := tenant["name"].(string), tenant["etag"].(string)

	// PATCH infers the mask from the body; a stale etag is 409.
	code, body, _ = op.do("PATCH", "/v1/"+tname, map[string]any{"displayName": "Contoso EU", "etag": etag})
	if code != 200 || body["tenant"].(map[string]any)["displayName"] != "Contoso EU" {
		t.Fatalf("patch: %d %v", code, body)
	}
	if code, body, _ = op.do("PATCH", "/v1/"+tname, map[string]any{"displayName": "Late", "etag": etag}); code != http.StatusConflict {
		t.Fatalf("stale etag: %d %v", code, body)
	}

	// Secrets travel in the body only, never in a response.
	code, body, _ = op.do("POST", "/v1/"+tname+"/integrations", map[string]any{
		"integration":  map[string]any{"kind": "INTEGRATION_KIND_MICROSOFT_365_DEFENDER", "application": map[string]any{"clientId": uuid.NewString()}},
		"clientSecret": "rest~Secret.Value_1234567890abcdefghijklm",
	})
	if code != 200 || strings.Contains(mustJSON(t, body), "rest~Secret") {
		t.Fatalf("create integration: %d %v", code, body)
	}
	code, body, _ = op.do("GET", "/v1/"+org+"/tenants/-/integrations?kind=INTEGRATION_KIND_MICROSOFT_365_DEFENDER", nil)
	if code != 200 || len(body["integrations"].([]any)) != 1 {
		t.Fatalf("list integrations: %d %v", code, body)
	}

	// Status codes of the usual failures.
	if code, _, _ = op.do("GET", "/v1/"+org+"/tenants/"+uuid.NewString(), nil); code != 404 {
		t.Fatalf("unknown tenant: %d", code)
	}
	if code, _, _ = (rest{t, s.HTTPURL, ""}).do("GET", "/v1/"+tname, nil); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	if code, _, _ = op.do("POST", "/v1/"+org+"/apiKeys", map[string]any{"displayName": "x", "role": "ROLE_ADMIN"}); code != 403 {
		t.Fatalf("operator creating a key: %d", code)
	}
	huge := map[string]any{"displayName": strings.Repeat("x", 2<<20)}
	if code, _, _ = op.do("POST", "/v1/"+org+"/tenants", huge); code != 413 && code != 400 {
		t.Fatalf("oversized body: %d", code)
	}
	if n := countRows(t, s, "tenants"); n != 1 {
		t.Fatalf("%d tenants, want 1", n)
	}

	// Health, readiness and the OpenAPI document need no key.
	anon := rest{t, s.HTTPURL, ""}
	if code, _, _ = anon.do("GET", "/healthz", nil); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body, _ = anon.do("GET", "/readyz", nil); code != 200 || body["status"] != "ok" {
		t.Fatalf("readyz %d %v", code, body)
	}
	if code, body, _ = anon.do("GET", "/openapi.json", nil); code != 200 || body["swagger"] != "2.0" {
		t.Fatalf("openapi %d", code)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
