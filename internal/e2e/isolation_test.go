package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// call is one RPC aimed at organization A's resources.
type call struct {
	method string
	do     func(ctx context.Context) error
}

// callsAgainst returns one call per RPC of the API, targeting a's resources.
func callsAgainst(s *stack.Stack, a stack.Org, tenant, integ, key, hook, op string) []call {
	ops := v1.NewOperationServiceClient(s.Conn)
	c := s.Clients()
	hooks := v1.NewWebhookServiceClient(s.Conn)
	shared := v1.NewSharedApplicationServiceClient(s.Conn)
	sharedApp := a.Name + "/sharedApplications/microsoft-365-defender"
	const svc = "/dzconnect.v1."
	return []call{
		{svc + "OrganizationService/CreateOrganization", func(ctx context.Context) error {
			return errOf(c.Orgs.CreateOrganization(ctx, &v1.CreateOrganizationRequest{Organization: &v1.Organization{DisplayName: "x"}}))
		}},
		{svc + "OrganizationService/GetOrganization", func(ctx context.Context) error {
			return errOf(c.Orgs.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: a.Name}))
		}},
		{svc + "OrganizationService/ListOrganizations", func(ctx context.Context) error {
			return errOf(c.Orgs.ListOrganizations(ctx, &v1.ListOrganizationsRequest{}))
		}},
		{svc + "OrganizationService/UpdateOrganization", func(ctx context.Context) error {
			return errOf(c.Orgs.UpdateOrganization(ctx, &v1.UpdateOrganizationRequest{Organization: &v1.Organization{Name: a.Name, DisplayName: "pwned"}}))
		}},
		{svc + "OrganizationService/DeleteOrganization", func(ctx context.Context) error {
			return errOf(c.Orgs.DeleteOrganization(ctx, &v1.DeleteOrganizationRequest{Name: a.Name}))
		}},
		{svc + "OrganizationService/SetOrganizationProvisioner", func(ctx context.Context) error {
			return errOf(c.Orgs.SetOrganizationProvisioner(ctx, &v1.SetOrganizationProvisionerRequest{Name: a.Name,
				ClientId: uuid.NewString(), ClientSecret: "intruder~Secret.Value_1234567890abcdefg"}))
		}},
		{svc + "ApiKeyService/CreateApiKey", func(ctx context.Context) error {
			return errOf(c.Keys.CreateApiKey(ctx, &v1.CreateApiKeyRequest{Parent: a.Name, ApiKey: &v1.ApiKey{DisplayName: "x", Role: v1.Role_ROLE_ADMIN}}))
		}},
		{svc + "ApiKeyService/GetApiKey", func(ctx context.Context) error {
			return errOf(c.Keys.GetApiKey(ctx, &v1.GetApiKeyRequest{Name: key}))
		}},
		{svc + "ApiKeyService/ListApiKeys", func(ctx context.Context) error {
			return errOf(c.Keys.ListApiKeys(ctx, &v1.ListApiKeysRequest{Parent: a.Name}))
		}},
		{svc + "ApiKeyService/UpdateApiKey", func(ctx context.Context) error {
			return errOf(c.Keys.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{ApiKey: &v1.ApiKey{Name: key, DisplayName: "pwned"}}))
		}},
		{svc + "ApiKeyService/DeleteApiKey", func(ctx context.Context) error {
			return errOf(c.Keys.DeleteApiKey(ctx, &v1.DeleteApiKeyRequest{Name: key}))
		}},
		{svc + "TenantService/CreateTenant", func(ctx context.Context) error {
			return errOf(c.Tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Parent: a.Name, Tenant: &v1.Tenant{EntraTenantId: uuid.NewString(), Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "x"}}))
		}},
		{svc + "TenantService/GetTenant", func(ctx context.Context) error {
			return errOf(c.Tenants.GetTenant(ctx, &v1.GetTenantRequest{Name: tenant}))
		}},
		{svc + "TenantService/ListTenants", func(ctx context.Context) error {
			return errOf(c.Tenants.ListTenants(ctx, &v1.ListTenantsRequest{Parent: a.Name}))
		}},
		{svc + "TenantService/UpdateTenant", func(ctx context.Context) error {
			return errOf(c.Tenants.UpdateTenant(ctx, &v1.UpdateTenantRequest{Tenant: &v1.Tenant{Name: tenant, DisplayName: "pwned"}}))
		}},
		{svc + "TenantService/DeleteTenant", func(ctx context.Context) error {
			return errOf(c.Tenants.DeleteTenant(ctx, &v1.DeleteTenantRequest{Name: tenant}))
		}},
		{svc + "TenantService/GetAdminConsentLink", func(ctx context.Context) error {
			return errOf(c.Tenants.GetAdminConsentLink(ctx, &v1.GetAdminConsentLinkRequest{Name: tenant, RedirectUri: "https://intruder.example.com/cb"}))
		}},
		{svc + "TenantService/CompleteAdminConsent", func(ctx context.Context) error {
			return errOf(c.Tenants.CompleteAdminConsent(ctx, &v1.CompleteAdminConsentRequest{Parent: a.Name,
				State: strings.Repeat("A", 43), AdminConsent: "True", Tenant: uuid.NewString()}))
		}},
		{svc + "IntegrationService/CreateIntegration", func(ctx context.Context) error {
			return errOf(c.Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{Parent: tenant,
				Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}},
				ClientSecret: "intruder~Secret.Value_1234567890abcdefg"}))
		}},
		{svc + "IntegrationService/GetIntegration", func(ctx context.Context) error {
			return errOf(c.Integrations.GetIntegration(ctx, &v1.GetIntegrationRequest{Name: integ}))
		}},
		{svc + "IntegrationService/ListIntegrations", func(ctx context.Context) error {
			return errOf(c.Integrations.ListIntegrations(ctx, &v1.ListIntegrationsRequest{Parent: a.Name + "/tenants/-"}))
		}},
		{svc + "IntegrationService/UpdateIntegration", func(ctx context.Context) error {
			return errOf(c.Integrations.UpdateIntegration(ctx, &v1.UpdateIntegrationRequest{
				Integration: &v1.Integration{Name: integ, DisplayName: "pwned"}, ClientSecret: "intruder~Secret.Value_1234567890abcdefg"}))
		}},
		{svc + "IntegrationService/DeleteIntegration", func(ctx context.Context) error {
			return errOf(c.Integrations.DeleteIntegration(ctx, &v1.DeleteIntegrationRequest{Name: integ}))
		}},
		{svc + "IntegrationService/CheckIntegration", func(ctx context.Context) error {
			return errOf(c.Integrations.CheckIntegration(ctx, &v1.CheckIntegrationRequest{Name: integ}))
		}},
		{svc + "IntegrationService/ListChecks", func(ctx context.Context) error {
			return errOf(c.Integrations.ListChecks(ctx, &v1.ListChecksRequest{Parent: integ}))
		}},
		{svc + "AuditService/ListAuditEvents", func(ctx context.Context) error {
			return errOf(c.Audit.ListAuditEvents(ctx, &v1.ListAuditEventsRequest{Parent: a.Name}))
		}},
		{svc + "WebhookService/CreateWebhook", func(ctx context.Context) error {
			return errOf(hooks.CreateWebhook(ctx, &v1.CreateWebhookRequest{Parent: a.Name, Webhook: &v1.Webhook{
				Url: "https://intruder.example.com/", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}}))
		}},
		{svc + "WebhookService/GetWebhook", func(ctx context.Context) error {
			return errOf(hooks.GetWebhook(ctx, &v1.GetWebhookRequest{Name: hook}))
		}},
		{svc + "WebhookService/ListWebhooks", func(ctx context.Context) error {
			return errOf(hooks.ListWebhooks(ctx, &v1.ListWebhooksRequest{Parent: a.Name}))
		}},
		{svc + "WebhookService/UpdateWebhook", func(ctx context.Context) error {
			return errOf(hooks.UpdateWebhook(ctx, &v1.UpdateWebhookRequest{Webhook: &v1.Webhook{Name: hook, Url: "https://intruder.example.com/"}}))
		}},
		{svc + "WebhookService/DeleteWebhook", func(ctx context.Context) error {
			return errOf(hooks.DeleteWebhook(ctx, &v1.DeleteWebhookRequest{Name: hook}))
		}},
		{svc + "WebhookService/ListWebhookDeliveries", func(ctx context.Context) error {
			return errOf(hooks.ListWebhookDeliveries(ctx, &v1.ListWebhookDeliveriesRequest{Parent: hook}))
		}},
		{svc + "WebhookService/RedeliverWebhookDelivery", func(ctx context.Context) error {
			return errOf(hooks.RedeliverWebhookDelivery(ctx, &v1.RedeliverWebhookDeliveryRequest{Name: hook + "/deliveries/1"}))
		}},
		{svc + "ProvisioningService/ProvisionIntegration", func(ctx context.Context) error {
			return errOf(v1.NewProvisioningServiceClient(s.Conn).ProvisionIntegration(ctx, &v1.ProvisionIntegrationRequest{Parent: tenant,
				Spec: &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER}, RequestId: uuid.NewString()}))
		}},
		{svc + "ProvisioningService/DeprovisionIntegration", func(ctx context.Context) error {
			return errOf(v1.NewProvisioningServiceClient(s.Conn).DeprovisionIntegration(ctx, &v1.DeprovisionIntegrationRequest{Name: integ,
				RequestId: uuid.NewString()}))
		}},
		{svc + "ProvisioningService/RotateCredential", func(ctx context.Context) error {
			return errOf(v1.NewProvisioningServiceClient(s.Conn).RotateCredential(ctx, &v1.RotateCredentialRequest{Name: integ,
				RequestId: uuid.NewString()}))
		}},
		{svc + "ProvisioningService/GenerateCertificateCredential", func(ctx context.Context) error {
			return errOf(v1.NewProvisioningServiceClient(s.Conn).GenerateCertificateCredential(ctx, &v1.GenerateCertificateCredentialRequest{Name: integ,
				RequestId: uuid.NewString()}))
		}},
		{svc + "SharedApplicationService/CreateSharedApplication", func(ctx context.Context) error {
			return errOf(shared.CreateSharedApplication(ctx, &v1.CreateSharedApplicationRequest{Parent: a.Name,
				SharedApplication: &v1.SharedApplication{Kind: defenderKind, ClientId: uuid.NewString()}, ClientSecret: "intruder~Secret.Value_1234567890abcdef"}))
		}},
		{svc + "SharedApplicationService/GetSharedApplication", func(ctx context.Context) error {
			return errOf(shared.GetSharedApplication(ctx, &v1.GetSharedApplicationRequest{Name: sharedApp}))
		}},
		{svc + "SharedApplicationService/ListSharedApplications", func(ctx context.Context) error {
			return errOf(shared.ListSharedApplications(ctx, &v1.ListSharedApplicationsRequest{Parent: a.Name}))
		}},
		{svc + "SharedApplicationService/UpdateSharedApplication", func(ctx context.Context) error {
			return errOf(shared.UpdateSharedApplication(ctx, &v1.UpdateSharedApplicationRequest{
				SharedApplication: &v1.SharedApplication{Name: sharedApp}, ClientSecret: "intruder~Secret.Value_1234567890abcdef"}))
		}},
		{svc + "SharedApplicationService/DeleteSharedApplication", func(ctx context.Context) error {
			return errOf(shared.DeleteSharedApplication(ctx, &v1.DeleteSharedApplicationRequest{Name: sharedApp}))
		}},
		{svc + "SharedApplicationService/GetSharedApplicationConsentLink", func(ctx context.Context) error {
			return errOf(shared.GetSharedApplicationConsentLink(ctx, &v1.GetSharedApplicationConsentLinkRequest{Name: sharedApp,
				Tenant: tenant, RedirectUri: "https://intruder.example.com/cb"}))
		}},
		{svc + "SharedApplicationService/CreateSharedIntegration", func(ctx context.Context) error {
			return errOf(shared.CreateSharedIntegration(ctx, &v1.CreateSharedIntegrationRequest{Parent: tenant,
				Integration: &v1.Integration{Kind: defenderKind}}))
		}},
		{svc + "OperationService/GetOperation", func(ctx context.Context) error {
			return errOf(ops.GetOperation(ctx, &v1.GetOperationRequest{Name: op}))
		}},
		{svc + "OperationService/ListOperations", func(ctx context.Context) error {
			return errOf(ops.ListOperations(ctx, &v1.ListOperationsRequest{Parent: a.Name}))
		}},
		{svc + "OperationService/CancelOperation", func(ctx context.Context) error {
			return errOf(ops.CancelOperation(ctx, &v1.CancelOperationRequest{Name: op}))
		}},
		{svc + "OperationService/WaitOperation", func(ctx context.Context) error {
			return errOf(ops.WaitOperation(ctx, &v1.WaitOperationRequest{Name: op, Timeout: durationpb.New(100 * time.Millisecond)}))
		}},
		{svc + "TokenService/IssueAccessToken", func(ctx context.Context) error {
			return errOf(v1.NewTokenServiceClient(s.Conn).IssueAccessToken(ctx, &v1.IssueAccessTokenRequest{Integration: integ,
				Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH}))
		}},
		{svc + "TokenService/AcknowledgeCredential", func(ctx context.Context) error {
			return errOf(v1.NewTokenServiceClient(s.Conn).AcknowledgeCredential(ctx, &v1.AcknowledgeCredentialRequest{Integration: integ,
				Consumer: "intruder", Credential: integ + "/credentials/" + uuid.NewString()}))
		}},
		{svc + "CatalogService/GetPermissionCatalog", func(ctx context.Context) error {
			return errOf(c.Catalog.GetPermissionCatalog(ctx, &v1.GetPermissionCatalogRequest{}))
		}},
		{svc + "CatalogService/GetPermissionCatalogOverride", func(ctx context.Context) error {
			return errOf(c.Catalog.GetPermissionCatalogOverride(ctx, &v1.GetPermissionCatalogOverrideRequest{Name: a.Name + "/permissionCatalogOverride"}))
		}},
		{svc + "CatalogService/UpdatePermissionCatalogOverride", func(ctx context.Context) error {
			return errOf(c.Catalog.UpdatePermissionCatalogOverride(ctx, &v1.UpdatePermissionCatalogOverrideRequest{
				PermissionCatalogOverride: &v1.PermissionCatalogOverride{Name: a.Name + "/permissionCatalogOverride"}}))
		}},
	}
}

// apiMethods lists every RPC the API defines, from the descriptors.
func apiMethods(t *testing.T) map[string]bool {
	out := map[string]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("dzconnect.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				out["/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name())] = true
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no API methods found")
	}
	return out
}

// snapshot captures everything a call could have written.
func snapshot(t *testing.T, s *stack.Stack) map[string]int {
	out := map[string]int{}
	for _, table := range []string{"organizations", "api_keys", "tenants", "integrations", "idempotency_keys", "audit_events",
		"secret_destructions", "checks", "webhooks", "webhook_deliveries", "admin_consent_requests", "operations", "operation_steps",
		"shared_applications", "shared_application_consents", "shared_integrations", "token_issuances", "credential_consumers"} {
		out[table] = countRows(t, s, table)
	}
	var sum int
	if err := s.DB.QueryRow(context.Background(), `select coalesce(sum(version), 0) from
		(select version from organizations union all select version from api_keys union all
		 select version from tenants union all select version from integrations union all
		 select version from webhooks union all select version from operations union all
		 select version from shared_applications) v`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	out["versions"] = sum
	return out
}

// TestOrganizationIsolation runs every RPC with organization B's keys (each
// role) against organization A's resources: all answer NotFound, or
// PermissionDenied for service-admin methods, and nothing is written.
func TestOrganizationIsolation(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	a := s.NewOrg(t, "Org A")
	b := s.NewOrg(t, "Org B")
	tenant := newTenant(t, s, a.OperatorCtx, a.Name)
	integ := newIntegration(t, s, a.OperatorCtx, tenant.GetName(), "victim~Secret.Value_1234567890abcdefghi")
	keys, err := s.Clients().Keys.ListApiKeys(a.AdminCtx, &v1.ListApiKeysRequest{Parent: a.Name})
	if err != nil {
		t.Fatal(err)
	}
	key := keys.GetApiKeys()[0].GetName()

	hook, err := v1.NewWebhookServiceClient(s.Conn).CreateWebhook(a.AdminCtx, &v1.CreateWebhookRequest{Parent: a.Name,
		Webhook: &v1.Webhook{Url: "https://victim.example.com/", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}})
	if err != nil {
		t.Fatal(err)
	}

	// A's shared application, which B's calls target.
	if _, err := v1.NewSharedApplicationServiceClient(s.Conn).CreateSharedApplication(a.AdminCtx, &v1.CreateSharedApplicationRequest{
		Parent: a.Name, SharedApplication: &v1.SharedApplication{Kind: defenderKind, ClientId: uuid.NewString()},
		ClientSecret: "victim~Shared.Secret_Value_1234567890abc"}); err != nil {
		t.Fatal(err)
	}

	op := newOpHarness(t, s).start(t, a.Name)
	calls := callsAgainst(s, a, tenant.GetName(), integ.GetName(), key, hook.GetWebhook().GetName(), op)
	covered := map[string]bool{}
	for _, c := range calls {
		covered[c.method] = true
	}
	for m := range apiMethods(t) {
		if !covered[m] {
			t.Errorf("isolation test has no call for %s", m)
		}
	}

	before := snapshot(t, s)
	for role, ctx := range map[string]context.Context{"admin": b.AdminCtx, "operator": b.OperatorCtx, "viewer": b.ViewerCtx} {
		for _, c := range calls {
			err := c.do(ctx)
			want := codes.NotFound
			switch {
			case strings.HasPrefix(c.method, "/dzconnect.v1.OrganizationService/") && !strings.HasSuffix(c.method, "GetOrganization") &&
				!strings.HasSuffix(c.method, "SetOrganizationProvisioner"):
				want = codes.PermissionDenied
			case strings.HasSuffix(c.method, "GetPermissionCatalog"):
				want = codes.OK
			}
			st := wantCodeSoft(err)
			if st != want {
				t.Errorf("%s as B's %s: got %v (%v), want %v", c.method, role, st, err, want)
			}
		}
	}
	if after := snapshot(t, s); !equalCounts(before, after) {
		t.Fatalf("organization B's calls wrote to the database:\nbefore %v\nafter  %v", before, after)
	}
	if v, ok := secretAt(t, s, activeSecretPath(integ), 1); !ok || v != "victim~Secret.Value_1234567890abcdefghi" {
		t.Fatal("A's secret changed")
	}
	if _, ok := secretAt(t, s, activeSecretPath(integ), 2); ok {
		t.Fatal("B wrote a new secret version for A's integration")
	}
}

func wantCodeSoft(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return status.Code(err)
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}
