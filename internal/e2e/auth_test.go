package e2e

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Auth")
	get := func(key string) error {
		return errOf(c.Orgs.GetOrganization(stack.Ctx(t, key), &v1.GetOrganizationRequest{Name: org.Name}))
	}
	if err := get(org.Viewer); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "dzk_unknown", "Basic abc", org.Viewer + "x"} {
		wantCode(t, get(key), codes.Unauthenticated)
	}
	// A revoked key stops working at once.
	keys, err := c.Keys.ListApiKeys(org.AdminCtx, &v1.ListApiKeysRequest{Parent: org.Name})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.GetApiKeys() {
		if k.GetRole() == v1.Role_ROLE_VIEWER {
			if _, err := c.Keys.DeleteApiKey(org.AdminCtx, &v1.DeleteApiKeyRequest{Name: k.GetName()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantCode(t, get(org.Viewer), codes.Unauthenticated)
	// A key with an expiry works until then; one that is expired is refused
	// at creation.
	wantViolation(t, errOf(c.Keys.CreateApiKey(org.AdminCtx, &v1.CreateApiKeyRequest{Parent: org.Name,
		ApiKey: &v1.ApiKey{DisplayName: "old", Role: v1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(time.Now().Add(-time.Minute))}})), "api_key.expire_time")
	k, err := c.Keys.CreateApiKey(org.AdminCtx, &v1.CreateApiKeyRequest{Parent: org.Name,
		ApiKey: &v1.ApiKey{DisplayName: "temp", Role: v1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(time.Now().Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := get(k.GetSecret()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.Exec(t.Context(), `update api_keys set expire_time = now() - interval '1 second' where key_prefix = $1`, k.GetApiKey().GetKeyPrefix()); err != nil {
		t.Fatal(err)
	}
	// A change made outside the API reaches the key cache through the
	// api_keys trigger's notification: within milliseconds, not at once.
	pollFor(t, 10*time.Second, "the expired key is refused", func() bool {
		err := get(k.GetSecret())
		return err != nil && wantCode(t, err, codes.Unauthenticated) != nil
	})
}

func TestRoles(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Roles")
	tenantReq := func() *v1.CreateTenantRequest {
		return &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{EntraTenantId: "11111111-2222-3333-4444-555555555555", Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "x"}}
	}
	wantCode(t, errOf(c.Tenants.CreateTenant(org.ViewerCtx, tenantReq())), codes.PermissionDenied)
	wantCode(t, errOf(c.Keys.CreateApiKey(org.OperatorCtx, &v1.CreateApiKeyRequest{Parent: org.Name, ApiKey: &v1.ApiKey{DisplayName: "x", Role: v1.Role_ROLE_ADMIN}})), codes.PermissionDenied)
	wantCode(t, errOf(c.Audit.ListAuditEvents(org.OperatorCtx, &v1.ListAuditEventsRequest{Parent: org.Name})), codes.PermissionDenied)
	wantCode(t, errOf(c.Orgs.CreateOrganization(org.AdminCtx, &v1.CreateOrganizationRequest{Organization: &v1.Organization{DisplayName: "x"}})), codes.PermissionDenied)
	if n := countRows(t, s, "tenants"); n != 0 {
		t.Fatalf("a refused call wrote %d tenants", n)
	}
	if _, err := c.Tenants.CreateTenant(org.OperatorCtx, tenantReq()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Catalog.GetPermissionCatalog(org.ViewerCtx, &v1.GetPermissionCatalogRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Audit")
	tenant, err := c.Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, RequestId: "0b8f9f0e-1d7a-4b8e-9c53-2f3d5a6b7c8d",
		Tenant: &v1.Tenant{EntraTenantId: "11111111-2222-3333-4444-555555555555", Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tenants.DeleteTenant(org.OperatorCtx, &v1.DeleteTenantRequest{Name: tenant.GetTenant().GetName()}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Audit.ListAuditEvents(org.AdminCtx, &v1.ListAuditEventsRequest{Parent: org.Name, Resource: tenant.GetTenant().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	ev := resp.GetAuditEvents()
	if len(ev) != 2 || ev[0].GetMethod() != v1.TenantService_DeleteTenant_FullMethodName || ev[1].GetMethod() != v1.TenantService_CreateTenant_FullMethodName {
		t.Fatalf("events %v", ev)
	}
	if ev[1].GetRequestId() != "0b8f9f0e-1d7a-4b8e-9c53-2f3d5a6b7c8d" || ev[1].GetActor() == "" || ev[1].GetActor() == "service-admin" {
		t.Fatalf("create event %v", ev[1])
	}
	// The whole trail pages: org create, three keys, tenant create and delete.
	var all []*v1.AuditEvent
	token := ""
	for {
		page, err := c.Audit.ListAuditEvents(org.AdminCtx, &v1.ListAuditEventsRequest{Parent: org.Name, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.GetAuditEvents()...)
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) != 6 || all[5].GetActor() != "service-admin" {
		t.Fatalf("%d events, last %v", len(all), all[len(all)-1])
	}
}

func TestVaultAppRole(t *testing.T) {
	t.Parallel()
	base := stack.Start(t)
	role := base.Vault.EnableAppRole(t, base.Vault.Mount)
	s := stack.Start(t, stack.Options{DatabaseURL: base.DatabaseURL, Vault: base.Vault, AppRole: role})
	org := s.NewOrg(t, "AppRole")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	in := newIntegration(t, s, org.OperatorCtx, tenant.GetName(), "approle~Secret.Value_1234567890abcdefgh")
	if v, ok := secretAt(t, s, activeSecretPath(in), 1); !ok || v != "approle~Secret.Value_1234567890abcdefgh" {
		t.Fatalf("secret via AppRole = %q", v)
	}
}
