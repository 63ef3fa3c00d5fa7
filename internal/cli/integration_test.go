package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

const testClientSecret = "Xq8Q~client.secret_value-0123456789"

func TestIntegrationCreateReadsSecretFromStdin(t *testing.T) {
	h := newHarness(t)
	r := h.ok(testClientSecret+"\n", "integration", "create",
		"--tenant", "organizations/o1/tenants/t1", "--kind", "defender",
		"--client-id", "11111111-2222-3333-4444-555555555555", "--client-secret-file", "-",
		"--feature", "cloud_apps,live-response", "--feature", "exchange",
		"--secret-expire-time", "2027-11-26T00:00:00Z", "--secret-key-id", "kid-1", "--secret-hint", "Xq8",
		"--display-name", "Fabrikam Defender")
	req := lastRequest[*dzconnectv1.CreateIntegrationRequest](t, h, "CreateIntegration")
	diffProto(t, "create request", &dzconnectv1.CreateIntegrationRequest{
		Parent: "organizations/o1/tenants/t1",
		Integration: &dzconnectv1.Integration{
			DisplayName: "Fabrikam Defender",
			Kind:        dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER,
			Features: []dzconnectv1.Feature{
				dzconnectv1.Feature_FEATURE_CLOUD_APPS, dzconnectv1.Feature_FEATURE_LIVE_RESPONSE, dzconnectv1.Feature_FEATURE_EXCHANGE,
			},
			Application: &dzconnectv1.EntraApplication{ClientId: "11111111-2222-3333-4444-555555555555"},
			Credential:  &dzconnectv1.Credential{KeyId: "kid-1", Hint: "Xq8", ExpireTime: ts("2027-11-26T00:00:00Z")},
		},
		ClientSecret: testClientSecret,
		RequestId:    req.GetRequestId(),
	}, req)
	assertNoSecret(t, r)
	for _, want := range []string{"microsoft-365-defender", "cloud_apps,live_response,exchange", "customer-managed", "unverified", "2027-11-26T00:00:00Z"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestIntegrationCreateReadsSecretFromFile(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(path, []byte(testClientSecret+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.ok("", "-o", "json", "integration", "create",
		"--tenant", "organizations/o1/tenants/t1", "--kind", "sentinel",
		"--client-id", "11111111-2222-3333-4444-555555555555", "--client-secret-file", path,
		"--subscription-id", "sub", "--resource-group", "rg", "--workspace-name", "law", "--workspace-id", "wid")
	req := lastRequest[*dzconnectv1.CreateIntegrationRequest](t, h, "CreateIntegration")
	if req.GetClientSecret() != testClientSecret {
		t.Errorf("client_secret = %q", req.GetClientSecret())
	}
	diffProto(t, "sentinel", &dzconnectv1.SentinelWorkspace{SubscriptionId: "sub", ResourceGroup: "rg", WorkspaceName: "law", WorkspaceId: "wid"},
		req.GetIntegration().GetSentinel())
	if k := req.GetIntegration().GetKind(); k != dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL {
		t.Errorf("kind = %v", k)
	}
	assertNoSecret(t, r)
	var got dzconnectv1.Integration
	if err := protojson.Unmarshal([]byte(r.stdout), &got); err != nil || got.GetSentinel().GetWorkspaceName() != "law" {
		t.Errorf("JSON output (%v):\n%s", err, r.stdout)
	}
}

func TestIntegrationSecretErrors(t *testing.T) {
	h := newHarness(t)
	base := []string{"integration", "create", "--tenant", "organizations/o1/tenants/t1", "--kind", "defender", "--client-id", "c"}
	for _, tt := range []struct {
		name, stdin, file, want string
	}{
		{"empty stdin", "  \n", "-", "reading client secret from standard input: it is empty"},
		{"missing file", "", filepath.Join(t.TempDir(), "nope"), "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.run(tt.stdin, append(base, "--client-secret-file", tt.file)...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
	if n := len(h.srv.callsOf("CreateIntegration")); n != 0 {
		t.Errorf("%d CreateIntegration calls, want 0", n)
	}
}

func TestIntegrationUpdateMask(t *testing.T) {
	const name = "organizations/o1/tenants/t1/integrations/i1"
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantMask   []string
		wantIn     *dzconnectv1.Integration
		wantSecret string
	}{
		{
			name:     "display name",
			args:     []string{"--display-name", "New"},
			wantMask: []string{"display_name"},
			wantIn:   &dzconnectv1.Integration{Name: name, DisplayName: "New"},
		},
		{
			name:     "features replaced",
			args:     []string{"--feature", "exchange", "--etag", "e1"},
			wantMask: []string{"features"},
			wantIn:   &dzconnectv1.Integration{Name: name, Etag: "e1", Features: []dzconnectv1.Feature{dzconnectv1.Feature_FEATURE_EXCHANGE}},
		},
		{
			name:     "features cleared",
			args:     []string{"--feature="},
			wantMask: []string{"features"},
			wantIn:   &dzconnectv1.Integration{Name: name},
		},
		{
			name:     "sentinel",
			args:     []string{"--subscription-id", "s", "--resource-group", "r", "--workspace-name", "w", "--workspace-id", "i"},
			wantMask: []string{"sentinel"},
			wantIn: &dzconnectv1.Integration{Name: name, Sentinel: &dzconnectv1.SentinelWorkspace{
				SubscriptionId: "s", ResourceGroup: "r", WorkspaceName: "w", WorkspaceId: "i",
			}},
		},
		{
			name:     "credential metadata",
			args:     []string{"--secret-expire-time", "2028-01-31T00:00:00Z", "--secret-hint", "abc"},
			wantMask: []string{"credential.expire_time", "credential.hint"},
			wantIn:   &dzconnectv1.Integration{Name: name, Credential: &dzconnectv1.Credential{Hint: "abc", ExpireTime: ts("2028-01-31T00:00:00Z")}},
		},
		{
			name:       "secret only",
			stdin:      testClientSecret,
			args:       []string{"--client-secret-file", "-"},
			wantMask:   nil,
			wantIn:     &dzconnectv1.Integration{Name: name},
			wantSecret: testClientSecret,
		},
		{
			name:       "secret and expiry",
			stdin:      testClientSecret + "\n",
			args:       []string{"--client-secret-file", "-", "--secret-expire-time", "2028-01-31T00:00:00Z", "--secret-key-id", "kid-2"},
			wantMask:   []string{"credential.expire_time", "credential.key_id"},
			wantIn:     &dzconnectv1.Integration{Name: name, Credential: &dzconnectv1.Credential{KeyId: "kid-2", ExpireTime: ts("2028-01-31T00:00:00Z")}},
			wantSecret: testClientSecret,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.integrations = []*dzconnectv1.Integration{{Name: name, Credential: &dzconnectv1.Credential{Version: 1}}}
			r := h.ok(tt.stdin, append([]string{"integration", "update", name}, tt.args...)...)
			diffProto(t, "update request", &dzconnectv1.UpdateIntegrationRequest{
				Integration:  tt.wantIn,
				UpdateMask:   &fieldmaskpb.FieldMask{Paths: tt.wantMask},
				ClientSecret: tt.wantSecret,
			}, lastRequest[*dzconnectv1.UpdateIntegrationRequest](t, h, "UpdateIntegration"))
			assertNoSecret(t, r)
		})
	}
}

func TestIntegrationListAndGet(t *testing.T) {
	h := newHarness(t)
	h.srv.integrations = []*dzconnectv1.Integration{
		{
			Name: "organizations/o1/tenants/t1/integrations/i1", Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL,
			State:       dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY,
			Application: &dzconnectv1.EntraApplication{ClientId: "cid-1"},
			Credential:  &dzconnectv1.Credential{ExpireTime: ts("2027-01-01T00:00:00Z")},
		},
		{
			Name: "organizations/o1/tenants/t2/integrations/i2", Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER,
			State: dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
		},
		{Name: "organizations/o1/tenants/t2/integrations/i3", Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER},
	}

	r := h.ok("", "integration", "list", "--org", "o1")
	req := lastRequest[*dzconnectv1.ListIntegrationsRequest](t, h, "ListIntegrations")
	if req.GetParent() != "organizations/o1/tenants/-" {
		t.Errorf("parent = %q", req.GetParent())
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for _, want := range []string{"KIND", "STATE", "CLIENT ID", "SECRET EXPIRES"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header lacks %q: %q", want, lines[0])
		}
	}
	for i, want := range [][]string{
		{"integrations/i1", "microsoft-sentinel", "healthy", "cid-1", "2027-01-01T00:00:00Z"},
		{"integrations/i2", "microsoft-365-defender", "blocked-by-policy"},
		{"integrations/i3", "microsoft-365-defender"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d lacks %q: %q", i, w, lines[i+1])
			}
		}
	}

	h.ok("", "integration", "list", "--tenant", "organizations/o1/tenants/t2", "--kind", "defender", "--state", "blocked-by-policy", "--page-size", "10")
	diffProto(t, "filtered list", &dzconnectv1.ListIntegrationsRequest{
		Parent:   "organizations/o1/tenants/t2",
		PageSize: 10,
		Kind:     dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER,
		State:    dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
	}, lastRequest[*dzconnectv1.ListIntegrationsRequest](t, h, "ListIntegrations"))

	r = h.ok("", "integration", "get", "organizations/o1/tenants/t1/integrations/i1")
	if !strings.Contains(r.stdout, "healthy") || !strings.Contains(r.stdout, "Client ID:") {
		t.Errorf("get:\n%s", r.stdout)
	}
	r = h.ok("", "integration", "delete", "organizations/o1/tenants/t1/integrations/i1", "--etag", "x")
	diffProto(t, "delete", &dzconnectv1.DeleteIntegrationRequest{Name: "organizations/o1/tenants/t1/integrations/i1", Etag: "x"},
		lastRequest[*dzconnectv1.DeleteIntegrationRequest](t, h, "DeleteIntegration"))
}

func assertNoSecret(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, testClientSecret) {
		t.Errorf("client secret printed:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}
