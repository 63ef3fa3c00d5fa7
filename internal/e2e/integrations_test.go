package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// credentialSecretPath is where a credential's value is in Vault (relative
// to the service's prefix), from the credential's resource name.
func credentialSecretPath(c *v1.IntegrationCredential) string {
	parts := strings.Split(c.GetName(), "/")
	if len(parts) != 8 {
		return ""
	}
	return integration.CredentialSecretPath(uuid.MustParse(parts[1]), uuid.MustParse(parts[5]), uuid.MustParse(parts[7]))
}

// activeSecretPath is where the integration's active credential's value is
// in Vault ("" when it has none).
func activeSecretPath(in *v1.Integration) string {
	for _, c := range in.GetCredentials() {
		if c.GetState() == v1.CredentialState_CREDENTIAL_STATE_ACTIVE {
			return credentialSecretPath(c)
		}
	}
	return ""
}

// secretAt reads a secret version straight from the test's Vault.
func secretAt(t *testing.T, s *stack.Stack, path string, version int) (string, bool) {
	t.Helper()
	sec, err := s.Vault.KV().GetVersion(context.Background(), "dzconnect/"+path, version)
	if err != nil {
		return "", false
	}
	v, _ := sec.Data["client_secret"].(string)
	return v, true
}

func TestCustomerManagedIntegration(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: stack.SimArgs(stack.StartSim(t))})
	c := s.Clients()
	org := s.NewOrg(t, "Integrations")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	expire := time.Now().Add(400 * 24 * time.Hour).UTC().Truncate(time.Second)
	clientID := uuid.NewString()

	req := &v1.CreateIntegrationRequest{
		Parent: tenant.GetName(),
		Integration: &v1.Integration{
			Kind: defenderKind, DisplayName: "Dropzone AI",
			Features:    []v1.Feature{v1.Feature_FEATURE_LIVE_RESPONSE, v1.Feature_FEATURE_LIVE_RESPONSE},
			Application: &v1.EntraApplication{ClientId: clientID},
			Credential:  &v1.Credential{ExpireTime: timestamppb.New(expire), Hint: "abc"},
		},
		ClientSecret: "first~Secret.Value_1234567890abcdefghij",
		RequestId:    uuid.NewString(),
	}
	created, err := c.Integrations.CreateIntegration(org.OperatorCtx, req)
	if err != nil {
		t.Fatal(err)
	}
	in := created.GetIntegration()
	if in.GetState() != v1.IntegrationState_INTEGRATION_STATE_UNVERIFIED ||
		in.GetManagementMode() != v1.ManagementMode_MANAGEMENT_MODE_CUSTOMER_MANAGED ||
		len(in.GetFeatures()) != 1 || in.GetCredential().GetVersion() != 1 ||
		!in.GetCredential().GetExpireTime().AsTime().Equal(expire) || in.GetApplication().GetClientId() != clientID {
		t.Fatalf("created %v", in)
	}
	if len(in.GetCredentials()) != 1 || in.GetCredentials()[0].GetState() != v1.CredentialState_CREDENTIAL_STATE_ACTIVE ||
		in.GetCredentials()[0].GetType() != v1.CredentialType_CREDENTIAL_TYPE_CLIENT_SECRET ||
		in.GetCredentials()[0].GetSource() != v1.CredentialSource_CREDENTIAL_SOURCE_CUSTOMER ||
		in.GetCredentials()[0].GetHint() != "abc" || !in.GetCredentials()[0].GetEndTime().AsTime().Equal(expire) ||
		!strings.HasPrefix(in.GetCredentials()[0].GetName(), in.GetName()+"/credentials/") {
		t.Fatalf("credentials %v", in.GetCredentials())
	}
	firstPath := activeSecretPath(in)
	if v, ok := secretAt(t, s, firstPath, 1); !ok || v != req.ClientSecret {
		t.Fatalf("secret in Vault = %q, %v", v, ok)
	}
	// A replay returns the same integration and writes nothing more.
	again, err := c.Integrations.CreateIntegration(org.OperatorCtx, req)
	if err != nil || again.GetIntegration().GetName() != in.GetName() {
		t.Fatalf("replay: %v %v", again, err)
	}
	if n := countRows(t, s, "integrations"); n != 1 {
		t.Fatalf("%d integrations, want 1", n)
	}
	// The same kind and client ID in the tenant again is a conflict.
	req.RequestId = ""
	wantCode(t, errOf(c.Integrations.CreateIntegration(org.OperatorCtx, req)), codes.AlreadyExists)

	// Replacing the secret tries it first: Microsoft (msftsim) does not
	// know the tenant, so the update is refused naming client_secret, and
	// nothing changes (fallback_test.go covers the switch).
	err = errOf(c.Integrations.UpdateIntegration(org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration:  &v1.Integration{Name: in.GetName(), Etag: in.GetEtag(), DisplayName: "Renamed"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
		ClientSecret: "second~Secret.Value_1234567890abcdefghij",
	}))
	wantViolation(t, err, "client_secret")
	got, err := c.Integrations.GetIntegration(org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil || got.GetIntegration().GetDisplayName() != "Dropzone AI" || got.GetIntegration().GetEtag() != in.GetEtag() ||
		len(got.GetIntegration().GetCredentials()) != 1 || activeSecretPath(got.GetIntegration()) != firstPath {
		t.Fatalf("a refused update changed the integration: %v %v", got, err)
	}
	upd, err := c.Integrations.UpdateIntegration(org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: in.GetName(), Etag: in.GetEtag(), DisplayName: "Renamed"},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	})
	if err != nil || upd.GetIntegration().GetDisplayName() != "Renamed" {
		t.Fatalf("rename: %v %v", upd, err)
	}
	wantCode(t, errOf(c.Integrations.UpdateIntegration(org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: in.GetName(), Etag: in.GetEtag(), DisplayName: "stale"},
	})), codes.Aborted)

	// Filters.
	list, err := c.Integrations.ListIntegrations(org.ViewerCtx, &v1.ListIntegrationsRequest{Parent: org.Name + "/tenants/-", Kind: defenderKind})
	if err != nil || len(list.GetIntegrations()) != 1 {
		t.Fatalf("list by kind: %v %v", list, err)
	}
	list, err = c.Integrations.ListIntegrations(org.ViewerCtx, &v1.ListIntegrationsRequest{Parent: tenant.GetName(), Kind: sentinelKind})
	if err != nil || len(list.GetIntegrations()) != 0 {
		t.Fatalf("list by other kind: %v %v", list, err)
	}
	list, err = c.Integrations.ListIntegrations(org.ViewerCtx, &v1.ListIntegrationsRequest{Parent: tenant.GetName(), State: v1.IntegrationState_INTEGRATION_STATE_HEALTHY})
	if err != nil || len(list.GetIntegrations()) != 0 {
		t.Fatalf("list by state: %v %v", list, err)
	}

	// Delete removes the rows and destroys every credential's secret.
	if _, err := c.Integrations.DeleteIntegration(org.OperatorCtx, &v1.DeleteIntegrationRequest{Name: in.GetName()}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{firstPath} {
		if _, err := s.Vault.KV().GetMetadata(context.Background(), "dzconnect/"+p); err == nil {
			t.Fatalf("secret %s survived the delete", p)
		}
	}
	if n := countRows(t, s, "credentials"); n != 0 {
		t.Fatalf("%d credentials left", n)
	}
	wantCode(t, errOf(c.Integrations.GetIntegration(org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})), codes.NotFound)
}

func TestSentinelIntegration(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Sentinel")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	ws := &v1.SentinelWorkspace{SubscriptionId: uuid.NewString(), ResourceGroup: "rg-sec.prod(1)", WorkspaceName: "law-sentinel-01", WorkspaceId: uuid.NewString()}
	resp, err := c.Integrations.CreateIntegration(org.OperatorCtx, &v1.CreateIntegrationRequest{
		Parent:       tenant.GetName(),
		Integration:  &v1.Integration{Kind: sentinelKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}, Sentinel: ws},
		ClientSecret: "sentinel~Secret.Value_1234567890abcdefgh",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetIntegration().GetSentinel()
	if got.GetWorkspaceName() != ws.WorkspaceName || got.GetResourceGroup() != ws.ResourceGroup || got.GetWorkspaceId() != ws.WorkspaceId {
		t.Fatalf("sentinel = %v", got)
	}
}

func TestIntegrationValidation(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Validation")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	good := func() *v1.CreateIntegrationRequest {
		return &v1.CreateIntegrationRequest{
			Parent:       tenant.GetName(),
			Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}},
			ClientSecret: "valid~Secret.Value_1234567890abcdefghijk",
		}
	}
	cases := []struct {
		name  string
		edit  func(*v1.CreateIntegrationRequest)
		field string
	}{
		{"no kind", func(r *v1.CreateIntegrationRequest) { r.Integration.Kind = 0 }, "integration.kind"},
		{"bad client id", func(r *v1.CreateIntegrationRequest) { r.Integration.Application.ClientId = "not-a-guid" }, "integration.application.client_id"},
		{"no client id", func(r *v1.CreateIntegrationRequest) { r.Integration.Application = nil }, "integration.application.client_id"},
		{"no secret", func(r *v1.CreateIntegrationRequest) { r.ClientSecret = "" }, "client_secret"},
		{"secret id pasted", func(r *v1.CreateIntegrationRequest) { r.ClientSecret = uuid.NewString() }, "client_secret"},
		{"secret with spaces", func(r *v1.CreateIntegrationRequest) { r.ClientSecret = "has space" }, "client_secret"},
		{"feature on sentinel", func(r *v1.CreateIntegrationRequest) {
			r.Integration.Kind = sentinelKind
			r.Integration.Features = []v1.Feature{v1.Feature_FEATURE_EXCHANGE}
		}, "integration.features"},
		{"sentinel without workspace", func(r *v1.CreateIntegrationRequest) { r.Integration.Kind = sentinelKind }, "integration.sentinel"},
		{"workspace on defender", func(r *v1.CreateIntegrationRequest) { r.Integration.Sentinel = &v1.SentinelWorkspace{} }, "integration.sentinel"},
		{"bad workspace name", func(r *v1.CreateIntegrationRequest) {
			r.Integration.Kind = sentinelKind
			r.Integration.Sentinel = &v1.SentinelWorkspace{SubscriptionId: uuid.NewString(), ResourceGroup: "rg", WorkspaceName: "-x", WorkspaceId: uuid.NewString()}
		}, "integration.sentinel.workspace_name"},
		{"bad resource group", func(r *v1.CreateIntegrationRequest) {
			r.Integration.Kind = sentinelKind
			r.Integration.Sentinel = &v1.SentinelWorkspace{SubscriptionId: uuid.NewString(), ResourceGroup: "rg.", WorkspaceName: "good-name", WorkspaceId: uuid.NewString()}
		}, "integration.sentinel.resource_group"},
		{"expired secret", func(r *v1.CreateIntegrationRequest) {
			r.Integration.Credential = &v1.Credential{ExpireTime: timestamppb.New(time.Now().Add(-time.Hour))}
		}, "integration.credential.expire_time"},
		{"bad request id", func(r *v1.CreateIntegrationRequest) { r.RequestId = "abc" }, "request_id"},
		{"bad parent", func(r *v1.CreateIntegrationRequest) { r.Parent = org.Name + "/tenants/nope" }, "parent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(r)
			wantViolation(t, errOf(c.Integrations.CreateIntegration(org.OperatorCtx, r)), tc.field)
		})
	}
	if n := countRows(t, s, "integrations"); n != 0 {
		t.Fatalf("%d integrations written by invalid requests", n)
	}
	if n := countRows(t, s, "idempotency_keys"); n != 0 {
		t.Fatalf("%d request IDs written by invalid requests", n)
	}
	if keys, err := s.Vault.Client.Logical().List(s.Vault.Mount + "/metadata/dzconnect/organizations"); err != nil || keys != nil {
		t.Fatalf("Vault written by invalid requests: %v %v", keys, err)
	}
	// Unknown tenant: NotFound, nothing written.
	r := good()
	r.Parent = org.Name + "/tenants/" + uuid.NewString()
	wantCode(t, errOf(c.Integrations.CreateIntegration(org.OperatorCtx, r)), codes.NotFound)
}

func TestTenantValidationAndConflicts(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Tenants")
	entra := uuid.NewString()
	bad := &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: "contoso.onmicrosoft.com", DisplayName: " padded", Labels: map[string]string{"Bad Key": "v"},
	}}
	fields := violatedFields(t, errOf(c.Tenants.CreateTenant(org.OperatorCtx, bad)))
	for _, f := range []string{"tenant.entra_tenant_id", "tenant.cloud", "tenant.display_name", "tenant.labels.Bad Key"} {
		found := false
		for _, g := range fields {
			found = found || g == f
		}
		if !found {
			t.Errorf("violations %v do not name %s", fields, f)
		}
	}
	if n := countRows(t, s, "tenants"); n != 0 {
		t.Fatalf("%d tenants written by an invalid request", n)
	}
	ok := &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{EntraTenantId: entra, Cloud: v1.Cloud_CLOUD_US_GOV_GCC_HIGH, DisplayName: "Fabrikam", Labels: map[string]string{"tier": "gold"}}}
	created, err := c.Tenants.CreateTenant(org.OperatorCtx, ok)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(c.Tenants.CreateTenant(org.OperatorCtx, ok)), codes.AlreadyExists)
	// Labels replace as a whole; the implied mask covers populated fields.
	upd, err := c.Tenants.UpdateTenant(org.OperatorCtx, &v1.UpdateTenantRequest{Tenant: &v1.Tenant{
		Name: created.GetTenant().GetName(), Labels: map[string]string{"tier": "silver", "region": "eu"},
	}})
	if err != nil || upd.GetTenant().GetLabels()["tier"] != "silver" || upd.GetTenant().GetDisplayName() != "Fabrikam" {
		t.Fatalf("update: %v %v", upd, err)
	}
	// A tenant with integrations cannot be deleted.
	newIntegration(t, s, org.OperatorCtx, created.GetTenant().GetName(), "abc~Secret.Value_1234567890abcdefghijklm")
	wantCode(t, errOf(c.Tenants.DeleteTenant(org.OperatorCtx, &v1.DeleteTenantRequest{Name: created.GetTenant().GetName()})), codes.FailedPrecondition)
}
