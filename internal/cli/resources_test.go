package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// lastRequest returns the request of the latest call of method.
func lastRequest[T proto.Message](t *testing.T, h *harness, method string) T {
	t.Helper()
	calls := h.srv.callsOf(method)
	if len(calls) == 0 {
		t.Fatalf("no %s call", method)
	}
	return calls[len(calls)-1].req.(T)
}

func diffProto(t *testing.T, what string, want, got proto.Message) {
	t.Helper()
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func ts(s string) *timestamppb.Timestamp {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(tm)
}

func TestOrgCommands(t *testing.T) {
	h := newHarness(t)

	r := h.ok("", "org", "create", "--display-name", "Contoso MSSP")
	req := lastRequest[*dzconnectv1.CreateOrganizationRequest](t, h, "CreateOrganization")
	id, err := uuid.Parse(req.GetRequestId())
	if err != nil || id.Version() != 4 {
		t.Errorf("request_id %q is not a UUIDv4", req.GetRequestId())
	}
	diffProto(t, "create request", &dzconnectv1.CreateOrganizationRequest{
		Organization: &dzconnectv1.Organization{DisplayName: "Contoso MSSP"}, RequestId: req.GetRequestId(),
	}, req)
	for _, want := range []string{"Name:", "organizations/org-1", "Display name:", "Contoso MSSP", "Etag:", "e1", "Created:", "2026-11-26T04:00:00Z"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create output lacks %q:\n%s", want, r.stdout)
		}
	}

	// --request-id is passed through.
	h.ok("", "org", "create", "--display-name", "Second", "--request-id", "7b0b6a4e-4b4e-4f43-9a52-0f0b1f6d9e10")
	if got := lastRequest[*dzconnectv1.CreateOrganizationRequest](t, h, "CreateOrganization").GetRequestId(); got != "7b0b6a4e-4b4e-4f43-9a52-0f0b1f6d9e10" {
		t.Errorf("request_id = %q", got)
	}

	// A bare ID is expanded to organizations/ID.
	h.ok("", "org", "get", "org-1")
	diffProto(t, "get request", &dzconnectv1.GetOrganizationRequest{Name: "organizations/org-1"},
		lastRequest[*dzconnectv1.GetOrganizationRequest](t, h, "GetOrganization"))

	r = h.ok("", "-o", "json", "org", "update", "organizations/org-1", "--display-name", "Contoso Security", "--etag", "e1")
	diffProto(t, "update request", &dzconnectv1.UpdateOrganizationRequest{
		Organization: &dzconnectv1.Organization{Name: "organizations/org-1", DisplayName: "Contoso Security", Etag: "e1"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	}, lastRequest[*dzconnectv1.UpdateOrganizationRequest](t, h, "UpdateOrganization"))
	var got dzconnectv1.Organization
	if err := protojson.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("update -o json: %v\n%s", err, r.stdout)
	}
	if got.GetDisplayName() != "Contoso Security" || got.GetEtag() != "e1+" {
		t.Errorf("update output = %v", &got)
	}

	r = h.ok("", "org", "delete", "organizations/org-1", "--etag", "e1+")
	diffProto(t, "delete request", &dzconnectv1.DeleteOrganizationRequest{Name: "organizations/org-1", Etag: "e1+"},
		lastRequest[*dzconnectv1.DeleteOrganizationRequest](t, h, "DeleteOrganization"))
	if r.stdout != "Deleted organizations/org-1\n" {
		t.Errorf("delete output = %q", r.stdout)
	}
	if r = h.ok("", "-o", "json", "org", "delete", "organizations/org-2"); r.stdout != "{\n  \"name\": \"organizations/org-2\"\n}\n" {
		t.Errorf("delete -o json output = %q", r.stdout)
	}
}

func TestListFollowsPagination(t *testing.T) {
	h := newHarness(t) // the fake's default page size is 2
	for i := range 5 {
		h.ok("", "org", "create", "--display-name", "Org "+string(rune('A'+i)))
	}

	r := h.ok("", "org", "list")
	calls := h.srv.callsOf("ListOrganizations")
	var tokens []string
	for _, c := range calls {
		tokens = append(tokens, c.req.(*dzconnectv1.ListOrganizationsRequest).GetPageToken())
	}
	if d := cmp.Diff([]string{"", "p2", "p4"}, tokens); d != "" {
		t.Errorf("page tokens (-want +got):\n%s", d)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "DISPLAY NAME") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for i, l := range lines[1:] {
		if !strings.Contains(l, "Org "+string(rune('A'+i))) || !strings.Contains(l, "2026-11-26T04:00:00Z") {
			t.Errorf("row %d = %q", i, l)
		}
	}

	// JSON holds every page in one list response without a page token.
	r = h.ok("", "-o", "json", "org", "list")
	var all dzconnectv1.ListOrganizationsResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.GetOrganizations()) != 5 || all.GetNextPageToken() != "" {
		t.Errorf("JSON list has %d organizations, token %q", len(all.GetOrganizations()), all.GetNextPageToken())
	}

	// --limit stops early and asks for no more than it needs.
	before := len(h.srv.callsOf("ListOrganizations"))
	r = h.ok("", "org", "list", "--page-size", "2", "--limit", "3")
	calls = h.srv.callsOf("ListOrganizations")[before:]
	var sizes []int32
	for _, c := range calls {
		sizes = append(sizes, c.req.(*dzconnectv1.ListOrganizationsRequest).GetPageSize())
	}
	if d := cmp.Diff([]int32{2, 1}, sizes); d != "" {
		t.Errorf("page sizes (-want +got):\n%s", d)
	}
	if n := strings.Count(r.stdout, "organizations/"); n != 3 {
		t.Errorf("--limit 3 printed %d rows:\n%s", n, r.stdout)
	}
}

func TestEmptyList(t *testing.T) {
	h := newHarness(t)
	r := h.ok("", "tenant", "list", "--org", "o1")
	if r.stdout != "" || r.stderr != "No tenants found.\n" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if r = h.ok("", "-o", "json", "tenant", "list", "--org", "o1"); r.stdout != "{}\n" {
		t.Errorf("JSON = %q", r.stdout)
	}
}

func TestAPIKeyCommands(t *testing.T) {
	h := newHarness(t)

	r := h.ok("", "apikey", "create", "--org", "organizations/o1", "--display-name", "bot", "--role", "operator",
		"--expire-time", "2027-06-30T00:00:00Z")
	req := lastRequest[*dzconnectv1.CreateApiKeyRequest](t, h, "CreateApiKey")
	diffProto(t, "create request", &dzconnectv1.CreateApiKeyRequest{
		Parent:    "organizations/o1",
		ApiKey:    &dzconnectv1.ApiKey{DisplayName: "bot", Role: dzconnectv1.Role_ROLE_OPERATOR, ExpireTime: ts("2027-06-30T00:00:00Z")},
		RequestId: req.GetRequestId(),
	}, req)
	if strings.Count(r.stdout, fakeAPIKeySecret) != 1 || !strings.Contains(r.stdout, "Role:") || !strings.Contains(r.stdout, "operator") {
		t.Errorf("stdout should show the key and its secret once:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "not shown again") {
		t.Errorf("stderr lacks the warning: %q", r.stderr)
	}

	r = h.ok("", "-o", "json", "apikey", "create", "--org", "o1", "--display-name", "ci", "--role", "viewer")
	var resp dzconnectv1.CreateApiKeyResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.GetSecret() != fakeAPIKeySecret || resp.GetApiKey().GetRole() != dzconnectv1.Role_ROLE_VIEWER {
		t.Errorf("JSON response = %v", &resp)
	}

	// A request_id replay returns the key without its secret: say so.
	const rid = "0d3c9a52-1111-4b5e-8c39-0a1b2c3d4e5f"
	h.ok("", "apikey", "create", "--org", "o1", "--display-name", "r", "--role", "viewer", "--request-id", rid)
	r = h.ok("", "apikey", "create", "--org", "o1", "--display-name", "r", "--role", "viewer", "--request-id", rid)
	if strings.Contains(r.stdout, "Secret") || !strings.Contains(r.stderr, "no secret returned") {
		t.Errorf("replay:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}

	r = h.ok("", "apikey", "list", "--org", "o1")
	if !strings.Contains(r.stdout, "ROLE") || !strings.Contains(r.stdout, "viewer") || !strings.Contains(r.stdout, "2027-06-30T00:00:00Z") {
		t.Errorf("list:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, fakeAPIKeySecret) {
		t.Errorf("list printed the secret")
	}

	h.ok("", "apikey", "get", "organizations/o1/apiKeys/key-1")
	diffProto(t, "get request", &dzconnectv1.GetApiKeyRequest{Name: "organizations/o1/apiKeys/key-1"},
		lastRequest[*dzconnectv1.GetApiKeyRequest](t, h, "GetApiKey"))

	h.ok("", "apikey", "update", "organizations/o1/apiKeys/key-1", "--display-name", "bot2", "--etag", "e1")
	diffProto(t, "update request", &dzconnectv1.UpdateApiKeyRequest{
		ApiKey:     &dzconnectv1.ApiKey{Name: "organizations/o1/apiKeys/key-1", DisplayName: "bot2", Etag: "e1"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	}, lastRequest[*dzconnectv1.UpdateApiKeyRequest](t, h, "UpdateApiKey"))

	h.ok("", "apikey", "delete", "organizations/o1/apiKeys/key-1")
	diffProto(t, "delete request", &dzconnectv1.DeleteApiKeyRequest{Name: "organizations/o1/apiKeys/key-1"},
		lastRequest[*dzconnectv1.DeleteApiKeyRequest](t, h, "DeleteApiKey"))
}

func TestTenantCommands(t *testing.T) {
	h := newHarness(t)

	r := h.ok("", "tenant", "create", "--org", "o1", "--entra-tenant-id", "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f",
		"--cloud", "us-gov-gcc-high", "--display-name", "Agency", "--label", "tier=gold", "--label", "region=us=east")
	req := lastRequest[*dzconnectv1.CreateTenantRequest](t, h, "CreateTenant")
	diffProto(t, "create request", &dzconnectv1.CreateTenantRequest{
		Parent: "organizations/o1",
		Tenant: &dzconnectv1.Tenant{
			EntraTenantId: "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f", Cloud: dzconnectv1.Cloud_CLOUD_US_GOV_GCC_HIGH,
			DisplayName: "Agency", Labels: map[string]string{"tier": "gold", "region": "us=east"},
		},
		RequestId: req.GetRequestId(),
	}, req)
	if !strings.Contains(r.stdout, "us-gov-gcc-high") || !strings.Contains(r.stdout, "region=us=east,tier=gold") {
		t.Errorf("create output:\n%s", r.stdout)
	}

	// The cloud defaults to global.
	h.ok("", "tenant", "create", "--org", "o1", "--entra-tenant-id", "g2", "--display-name", "Fabrikam")
	if c := lastRequest[*dzconnectv1.CreateTenantRequest](t, h, "CreateTenant").GetTenant().GetCloud(); c != dzconnectv1.Cloud_CLOUD_GLOBAL {
		t.Errorf("default cloud = %v", c)
	}

	r = h.ok("", "tenant", "list", "--org", "o1")
	if !strings.Contains(r.stdout, "ENTRA TENANT ID") || !strings.Contains(r.stdout, "global") || strings.Count(r.stdout, "organizations/o1/tenants/") != 2 {
		t.Errorf("list:\n%s", r.stdout)
	}

	tests := []struct {
		name string
		args []string
		want *dzconnectv1.UpdateTenantRequest
	}{
		{
			name: "display name only",
			args: []string{"--display-name", "Agency 2"},
			want: &dzconnectv1.UpdateTenantRequest{
				Tenant:     &dzconnectv1.Tenant{Name: "organizations/o1/tenants/t-1", DisplayName: "Agency 2"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			},
		},
		{
			name: "labels with etag",
			args: []string{"--label", "tier=silver", "--etag", "e1"},
			want: &dzconnectv1.UpdateTenantRequest{
				Tenant:     &dzconnectv1.Tenant{Name: "organizations/o1/tenants/t-1", Labels: map[string]string{"tier": "silver"}, Etag: "e1"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
			},
		},
		{
			name: "clear labels and rename",
			args: []string{"--clear-labels", "--display-name", ""},
			want: &dzconnectv1.UpdateTenantRequest{
				Tenant:     &dzconnectv1.Tenant{Name: "organizations/o1/tenants/t-1"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", "labels"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.ok("", append([]string{"tenant", "update", "organizations/o1/tenants/t-1"}, tt.args...)...)
			diffProto(t, "update request", tt.want, lastRequest[*dzconnectv1.UpdateTenantRequest](t, h, "UpdateTenant"))
		})
	}

	h.ok("", "tenant", "get", "organizations/o1/tenants/t-1")
	h.ok("", "tenant", "delete", "organizations/o1/tenants/t-1", "--etag", "e1")
	diffProto(t, "delete request", &dzconnectv1.DeleteTenantRequest{Name: "organizations/o1/tenants/t-1", Etag: "e1"},
		lastRequest[*dzconnectv1.DeleteTenantRequest](t, h, "DeleteTenant"))
}

func TestAuditList(t *testing.T) {
	h := newHarness(t)
	for i, res := range []string{"organizations/o1/tenants/t1", "organizations/o1/tenants/t2", "organizations/o1/tenants/t1"} {
		h.srv.audit = append(h.srv.audit, &dzconnectv1.AuditEvent{
			Name: "organizations/o1/auditEvents/" + string(rune('a'+i)), Actor: "organizations/o1/apiKeys/k1",
			Method: "/dzconnect.v1.TenantService/UpdateTenant", Resource: res, RequestId: "req-" + string(rune('a'+i)), CreateTime: fixedTime,
		})
	}
	r := h.ok("", "audit", "list", "--org", "o1", "--resource", "organizations/o1/tenants/t1")
	diffProto(t, "list request", &dzconnectv1.ListAuditEventsRequest{Parent: "organizations/o1", Resource: "organizations/o1/tenants/t1"},
		h.srv.callsOf("ListAuditEvents")[0].req)
	if !strings.Contains(r.stdout, "REQUEST ID") || !strings.Contains(r.stdout, "req-a") || !strings.Contains(r.stdout, "req-c") || strings.Contains(r.stdout, "req-b") {
		t.Errorf("audit table:\n%s", r.stdout)
	}
}

func TestCatalog(t *testing.T) {
	h := newHarness(t)
	r := h.ok("", "catalog", "--kind", "defender", "--feature", "live_response")
	diffProto(t, "catalog request", &dzconnectv1.GetPermissionCatalogRequest{
		Kind:     dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER,
		Features: []dzconnectv1.Feature{dzconnectv1.Feature_FEATURE_LIVE_RESPONSE},
	}, lastRequest[*dzconnectv1.GetPermissionCatalogRequest](t, h, "GetPermissionCatalog"))
	for _, want := range []string{"Catalog version: 2026-11-01", "SecurityAlert.Read.All", "(base)", "live_response", "application", "required", "optional"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("catalog output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = h.ok("", "-o", "json", "catalog")
	var resp dzconnectv1.GetPermissionCatalogResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &resp); err != nil || len(resp.GetPermissions()) != 3 {
		t.Errorf("JSON catalog (%v):\n%s", err, r.stdout)
	}
}
