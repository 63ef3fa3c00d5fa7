package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/api/openapi"
	rc "github.com/dropzoneai/dzconnect/api/openapi/restclient"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestOpenAPIClient drives a running server only through the Go client that
// oapi-codegen generated from the OpenAPI document (api/openapi/restclient,
// `make generate`): the paths, parameters, bodies, security scheme and error
// responses the document declares must be the ones the gateway serves.
func TestOpenAPIClient(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The document the server serves is the one the client was generated from.
	resp, err := http.Get(s.HTTPURL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(served, openapi.Spec) {
		t.Fatalf("GET /openapi.json: %d, %d bytes, same as api/openapi: %v (%v)", resp.StatusCode, len(served), bytes.Equal(served, openapi.Spec), err)
	}

	client := func(key string) *rc.ClientWithResponses {
		c, err := rc.NewClientWithResponses(s.HTTPURL, rc.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin := client(s.AdminKey)

	// Organization and an operator key, as the service admin.
	orgResp, err := admin.OrganizationServiceCreateOrganizationWithResponse(ctx,
		&rc.OrganizationServiceCreateOrganizationParams{RequestId: oaPtr(uuid.NewString())},
		rc.V1Organization{DisplayName: oaPtr("OpenAPI MSSP")})
	if err != nil || orgResp.JSON200 == nil {
		t.Fatalf("create organization: %v %s", err, oaBody(orgResp.Body))
	}
	org := oaSegments(t, *orgResp.JSON200.Organization.Name, "organizations")[0]

	keyResp, err := admin.ApiKeyServiceCreateApiKeyWithResponse(ctx, org, &rc.ApiKeyServiceCreateApiKeyParams{},
		rc.V1ApiKey{DisplayName: oaPtr("ops"), Role: oaPtr(rc.ROLEOPERATOR)})
	if err != nil || keyResp.JSON200 == nil || !strings.HasPrefix(oaDeref(keyResp.JSON200.Secret), "dzk_") {
		t.Fatalf("create key: %v %s", err, oaBody(keyResp.Body))
	}
	op := client(*keyResp.JSON200.Secret)

	// A tenant: create, get, update with its etag; a stale etag is 409.
	requestID := uuid.NewString()
	tenantIn := rc.V1Tenant{EntraTenantId: oaPtr(uuid.NewString()), Cloud: oaPtr(rc.CLOUDGLOBAL), DisplayName: oaPtr("Contoso"), Labels: &map[string]string{"region": "eu"}}
	tResp, err := op.TenantServiceCreateTenantWithResponse(ctx, org, &rc.TenantServiceCreateTenantParams{RequestId: &requestID}, tenantIn)
	if err != nil || tResp.JSON200 == nil {
		t.Fatalf("create tenant: %v %s", err, oaBody(tResp.Body))
	}
	tenant := *tResp.JSON200.Tenant
	ids := oaSegments(t, *tenant.Name, "organizations", "tenants")
	if ids[0] != org {
		t.Fatalf("tenant %s is not in %s", *tenant.Name, org)
	}
	// The request ID travels as the document's query parameter: a replay
	// returns the same tenant.
	replay, err := op.TenantServiceCreateTenantWithResponse(ctx, org, &rc.TenantServiceCreateTenantParams{RequestId: &requestID}, tenantIn)
	if err != nil || replay.JSON200 == nil || *replay.JSON200.Tenant.Name != *tenant.Name {
		t.Fatalf("replayed create tenant: %v %s", err, oaBody(replay.Body))
	}

	got, err := op.TenantServiceGetTenantWithResponse(ctx, ids[0], ids[1])
	if err != nil || got.JSON200 == nil || oaDeref(got.JSON200.Tenant.DisplayName) != "Contoso" || (*got.JSON200.Tenant.Labels)["region"] != "eu" {
		t.Fatalf("get tenant: %v %s", err, oaBody(got.Body))
	}
	upd, err := op.TenantServiceUpdateTenantWithResponse(ctx, ids[0], ids[1], rc.TenantServiceUpdateTenantJSONRequestBody{DisplayName: oaPtr("Contoso EU"), Etag: tenant.Etag})
	if err != nil || upd.JSON200 == nil || oaDeref(upd.JSON200.Tenant.DisplayName) != "Contoso EU" {
		t.Fatalf("update tenant: %v %s", err, oaBody(upd.Body))
	}
	stale, err := op.TenantServiceUpdateTenantWithResponse(ctx, ids[0], ids[1], rc.TenantServiceUpdateTenantJSONRequestBody{DisplayName: oaPtr("Late"), Etag: tenant.Etag})
	if err != nil || stale.StatusCode() != http.StatusConflict || stale.JSON409 == nil || oaDeref(stale.JSON409.Message) == "" {
		t.Fatalf("stale etag: %v %d %s", err, stale.StatusCode(), oaBody(stale.Body))
	}

	// A customer-managed integration: the secret goes in the body and never
	// comes back.
	const secret = "oas~Secret.Value_1234567890abcdefghijklm"
	kind := rc.V1IntegrationKindINTEGRATIONKINDMICROSOFT365DEFENDER
	iResp, err := op.IntegrationServiceCreateIntegrationWithResponse(ctx, ids[0], ids[1], rc.IntegrationServiceCreateIntegrationBody{
		Integration:  &rc.V1Integration{Kind: &kind, Application: &rc.V1EntraApplication{ClientId: oaPtr(uuid.NewString())}},
		ClientSecret: oaPtr(secret),
		RequestId:    oaPtr(uuid.NewString()),
	})
	if err != nil || iResp.JSON200 == nil || strings.Contains(string(iResp.Body), secret) {
		t.Fatalf("create integration: %v %s", err, oaBody(iResp.Body))
	}
	iids := oaSegments(t, *iResp.JSON200.Integration.Name, "organizations", "tenants", "integrations")
	gi, err := op.IntegrationServiceGetIntegrationWithResponse(ctx, iids[0], iids[1], iids[2])
	if err != nil || gi.JSON200 == nil || *gi.JSON200.Integration.Kind != kind {
		t.Fatalf("get integration: %v %s", err, oaBody(gi.Body))
	}
	// "-" for every tenant, and an enum query parameter.
	listKind := rc.IntegrationServiceListIntegrationsParamsKind(kind)
	li, err := op.IntegrationServiceListIntegrationsWithResponse(ctx, org, "-", &rc.IntegrationServiceListIntegrationsParams{Kind: &listKind, PageSize: oaPtr(int32(10))})
	if err != nil || li.JSON200 == nil || li.JSON200.Integrations == nil || len(*li.JSON200.Integrations) != 1 {
		t.Fatalf("list integrations: %v %s", err, oaBody(li.Body))
	}

	// Reads of other resources, and the audit trail of the writes above
	// (admin role).
	cat, err := op.CatalogServiceGetPermissionCatalogWithResponse(ctx, &rc.CatalogServiceGetPermissionCatalogParams{})
	if err != nil || cat.JSON200 == nil {
		t.Fatalf("permission catalog: %v %s", err, oaBody(cat.Body))
	}
	audit, err := admin.AuditServiceListAuditEventsWithResponse(ctx, org, &rc.AuditServiceListAuditEventsParams{})
	if err != nil || audit.JSON200 == nil || audit.JSON200.AuditEvents == nil || len(*audit.JSON200.AuditEvents) < 3 {
		t.Fatalf("audit events: %v %s", err, oaBody(audit.Body))
	}

	// The declared error responses decode as google.rpc.Status.
	missing, err := op.TenantServiceGetTenantWithResponse(ctx, org, uuid.NewString())
	if err != nil || missing.JSON404 == nil || oaDeref(missing.JSON404.Code) != 5 {
		t.Fatalf("unknown tenant: %v %d %s", err, missing.StatusCode(), oaBody(missing.Body))
	}
	anon, err := client("").TenantServiceGetTenantWithResponse(ctx, ids[0], ids[1])
	if err != nil || anon.JSON401 == nil {
		t.Fatalf("no key: %v %d %s", err, anon.StatusCode(), oaBody(anon.Body))
	}
	denied, err := op.ApiKeyServiceCreateApiKeyWithResponse(ctx, org, &rc.ApiKeyServiceCreateApiKeyParams{}, rc.V1ApiKey{DisplayName: oaPtr("x"), Role: oaPtr(rc.ROLEADMIN)})
	if err != nil || denied.JSON403 == nil {
		t.Fatalf("operator creating a key: %v %d %s", err, denied.StatusCode(), oaBody(denied.Body))
	}
	bad, err := op.TenantServiceCreateTenantWithResponse(ctx, org, &rc.TenantServiceCreateTenantParams{}, rc.V1Tenant{EntraTenantId: oaPtr("nope"), Cloud: oaPtr(rc.CLOUDGLOBAL), DisplayName: oaPtr("x")})
	if err != nil || bad.JSON400 == nil || !strings.Contains(string(bad.Body), "tenant.entra_tenant_id") {
		t.Fatalf("invalid tenant: %v %d %s", err, bad.StatusCode(), oaBody(bad.Body))
	}

	// Deletes, with the etag as the document's query parameter.
	di, err := op.IntegrationServiceDeleteIntegrationWithResponse(ctx, iids[0], iids[1], iids[2], &rc.IntegrationServiceDeleteIntegrationParams{})
	if err != nil || di.StatusCode() != http.StatusOK {
		t.Fatalf("delete integration: %v %d %s", err, di.StatusCode(), oaBody(di.Body))
	}
	dt, err := op.TenantServiceDeleteTenantWithResponse(ctx, ids[0], ids[1], &rc.TenantServiceDeleteTenantParams{Etag: oaPtr("stale")})
	if err != nil || dt.StatusCode() == http.StatusOK {
		t.Fatalf("delete tenant with a stale etag: %v %d %s", err, dt.StatusCode(), oaBody(dt.Body))
	}
	dt, err = op.TenantServiceDeleteTenantWithResponse(ctx, ids[0], ids[1], &rc.TenantServiceDeleteTenantParams{Etag: upd.JSON200.Tenant.Etag})
	if err != nil || dt.StatusCode() != http.StatusOK {
		t.Fatalf("delete tenant: %v %d %s", err, dt.StatusCode(), oaBody(dt.Body))
	}
	if gone, err := op.TenantServiceGetTenantWithResponse(ctx, ids[0], ids[1]); err != nil || gone.JSON404 == nil {
		t.Fatalf("deleted tenant: %v %d", err, gone.StatusCode())
	}
}

// oaSegments splits an AIP resource name into its IDs, checking the
// collection names: organizations/o/tenants/t with ("organizations",
// "tenants") is [o t].
func oaSegments(t *testing.T, name string, collections ...string) []string {
	t.Helper()
	parts := strings.Split(name, "/")
	if len(parts) != 2*len(collections) {
		t.Fatalf("resource name %q: want %d segments", name, 2*len(collections))
	}
	ids := make([]string, len(collections))
	for i, c := range collections {
		if parts[2*i] != c || parts[2*i+1] == "" {
			t.Fatalf("resource name %q: want %s/{id} at segment %d", name, c, 2*i)
		}
		ids[i] = parts[2*i+1]
	}
	return ids
}

func oaPtr[T any](v T) *T { return &v }

func oaDeref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// oaBody shortens a response body for a failure message.
func oaBody(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}
