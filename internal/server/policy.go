package server

import (
	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/auth"
)

// methodPolicy is one RPC's authorization rule and where its target
// resource name is in the request.
type methodPolicy struct {
	rule   auth.Rule
	target func(req any) auth.Target
}

func org(role auth.Role, target func(req any) auth.Target) methodPolicy {
	return methodPolicy{rule: auth.Rule{Scope: auth.ScopeOrganization, Role: role}, target: target}
}

// orConsumer is org, also admitting consumer keys.
func orConsumer(role auth.Role, target func(req any) auth.Target) methodPolicy {
	return methodPolicy{rule: auth.Rule{Scope: auth.ScopeOrganization, Role: role, Consumer: true}, target: target}
}

func name(field string, get func(any) string) func(any) auth.Target {
	return func(req any) auth.Target { return auth.Target{Field: field, Name: get(req)} }
}

var (
	none         = func(any) auth.Target { return auth.Target{} }
	serviceAdmin = methodPolicy{rule: auth.Rule{Scope: auth.ScopeServiceAdmin}, target: none}
	anyCaller    = methodPolicy{rule: auth.Rule{Scope: auth.ScopeAuthenticated}, target: none}
)

// policies decides every RPC; a method missing here is refused (deny by
// default), and a test checks that every registered method is listed.
var policies = map[string]methodPolicy{
	v1.OrganizationService_CreateOrganization_FullMethodName: serviceAdmin,
	v1.OrganizationService_ListOrganizations_FullMethodName:  serviceAdmin,
	v1.OrganizationService_UpdateOrganization_FullMethodName: serviceAdmin,
	v1.OrganizationService_DeleteOrganization_FullMethodName: serviceAdmin,
	v1.OrganizationService_GetOrganization_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.GetOrganizationRequest).GetName() })),
	v1.OrganizationService_SetOrganizationProvisioner_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.SetOrganizationProvisionerRequest).GetName() })),

	v1.ApiKeyService_CreateApiKey_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.CreateApiKeyRequest).GetParent() })),
	v1.ApiKeyService_GetApiKey_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.GetApiKeyRequest).GetName() })),
	v1.ApiKeyService_ListApiKeys_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.ListApiKeysRequest).GetParent() })),
	v1.ApiKeyService_UpdateApiKey_FullMethodName: org(auth.RoleAdmin,
		name("api_key.name", func(r any) string { return r.(*v1.UpdateApiKeyRequest).GetApiKey().GetName() })),
	v1.ApiKeyService_DeleteApiKey_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.DeleteApiKeyRequest).GetName() })),

	v1.TenantService_CreateTenant_FullMethodName: org(auth.RoleOperator,
		name("parent", func(r any) string { return r.(*v1.CreateTenantRequest).GetParent() })),
	v1.TenantService_GetTenant_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.GetTenantRequest).GetName() })),
	v1.TenantService_ListTenants_FullMethodName: org(auth.RoleViewer,
		name("parent", func(r any) string { return r.(*v1.ListTenantsRequest).GetParent() })),
	v1.TenantService_UpdateTenant_FullMethodName: org(auth.RoleOperator,
		name("tenant.name", func(r any) string { return r.(*v1.UpdateTenantRequest).GetTenant().GetName() })),
	v1.TenantService_DeleteTenant_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.DeleteTenantRequest).GetName() })),
	v1.TenantService_GetAdminConsentLink_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.GetAdminConsentLinkRequest).GetName() })),
	v1.TenantService_CompleteAdminConsent_FullMethodName: org(auth.RoleOperator,
		name("parent", func(r any) string { return r.(*v1.CompleteAdminConsentRequest).GetParent() })),

	v1.IntegrationService_CreateIntegration_FullMethodName: org(auth.RoleOperator,
		name("parent", func(r any) string { return r.(*v1.CreateIntegrationRequest).GetParent() })),
	v1.IntegrationService_GetIntegration_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.GetIntegrationRequest).GetName() })),
	v1.IntegrationService_ListIntegrations_FullMethodName: org(auth.RoleViewer,
		name("parent", func(r any) string { return r.(*v1.ListIntegrationsRequest).GetParent() })),
	v1.IntegrationService_UpdateIntegration_FullMethodName: org(auth.RoleOperator,
		name("integration.name", func(r any) string { return r.(*v1.UpdateIntegrationRequest).GetIntegration().GetName() })),
	v1.IntegrationService_DeleteIntegration_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.DeleteIntegrationRequest).GetName() })),

	v1.IntegrationService_CheckIntegration_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.CheckIntegrationRequest).GetName() })),
	v1.IntegrationService_ListChecks_FullMethodName: org(auth.RoleViewer,
		name("parent", func(r any) string { return r.(*v1.ListChecksRequest).GetParent() })),

	v1.AuditService_ListAuditEvents_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.ListAuditEventsRequest).GetParent() })),

	// With its organization field set, GetPermissionCatalog also requires
	// the viewer role in that organization (checked by the handler).
	v1.CatalogService_GetPermissionCatalog_FullMethodName: anyCaller,
	v1.CatalogService_GetPermissionCatalogOverride_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.GetPermissionCatalogOverrideRequest).GetName() })),
	v1.CatalogService_UpdatePermissionCatalogOverride_FullMethodName: org(auth.RoleAdmin,
		name("permission_catalog_override.name", func(r any) string {
			return r.(*v1.UpdatePermissionCatalogOverrideRequest).GetPermissionCatalogOverride().GetName()
		})),

	v1.WebhookService_CreateWebhook_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.CreateWebhookRequest).GetParent() })),
	v1.WebhookService_GetWebhook_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.GetWebhookRequest).GetName() })),
	v1.WebhookService_ListWebhooks_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.ListWebhooksRequest).GetParent() })),
	v1.WebhookService_UpdateWebhook_FullMethodName: org(auth.RoleAdmin,
		name("webhook.name", func(r any) string { return r.(*v1.UpdateWebhookRequest).GetWebhook().GetName() })),
	v1.WebhookService_DeleteWebhook_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.DeleteWebhookRequest).GetName() })),
	v1.WebhookService_ListWebhookDeliveries_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.ListWebhookDeliveriesRequest).GetParent() })),
	v1.WebhookService_RedeliverWebhookDelivery_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.RedeliverWebhookDeliveryRequest).GetName() })),

	v1.SharedApplicationService_CreateSharedApplication_FullMethodName: org(auth.RoleAdmin,
		name("parent", func(r any) string { return r.(*v1.CreateSharedApplicationRequest).GetParent() })),
	v1.SharedApplicationService_GetSharedApplication_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.GetSharedApplicationRequest).GetName() })),
	v1.SharedApplicationService_ListSharedApplications_FullMethodName: org(auth.RoleViewer,
		name("parent", func(r any) string { return r.(*v1.ListSharedApplicationsRequest).GetParent() })),
	v1.SharedApplicationService_UpdateSharedApplication_FullMethodName: org(auth.RoleAdmin,
		name("shared_application.name", func(r any) string {
			return r.(*v1.UpdateSharedApplicationRequest).GetSharedApplication().GetName()
		})),
	v1.SharedApplicationService_DeleteSharedApplication_FullMethodName: org(auth.RoleAdmin,
		name("name", func(r any) string { return r.(*v1.DeleteSharedApplicationRequest).GetName() })),
	v1.SharedApplicationService_GetSharedApplicationConsentLink_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.GetSharedApplicationConsentLinkRequest).GetName() })),
	v1.SharedApplicationService_CreateSharedIntegration_FullMethodName: org(auth.RoleOperator,
		name("parent", func(r any) string { return r.(*v1.CreateSharedIntegrationRequest).GetParent() })),

	v1.ProvisioningService_ProvisionIntegration_FullMethodName: org(auth.RoleOperator,
		name("parent", func(r any) string { return r.(*v1.ProvisionIntegrationRequest).GetParent() })),
	v1.ProvisioningService_DeprovisionIntegration_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.DeprovisionIntegrationRequest).GetName() })),
	v1.ProvisioningService_RotateCredential_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.RotateCredentialRequest).GetName() })),
	v1.ProvisioningService_GenerateCertificateCredential_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.GenerateCertificateCredentialRequest).GetName() })),
	// TokenService: the only methods a consumer key may call.
	v1.TokenService_IssueAccessToken_FullMethodName: orConsumer(auth.RoleOperator,
		name("integration", func(r any) string { return r.(*v1.IssueAccessTokenRequest).GetIntegration() })),
	v1.TokenService_AcknowledgeCredential_FullMethodName: orConsumer(auth.RoleOperator,
		name("integration", func(r any) string { return r.(*v1.AcknowledgeCredentialRequest).GetIntegration() })),

	v1.OperationService_GetOperation_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.GetOperationRequest).GetName() })),
	v1.OperationService_ListOperations_FullMethodName: org(auth.RoleViewer,
		name("parent", func(r any) string { return r.(*v1.ListOperationsRequest).GetParent() })),
	v1.OperationService_CancelOperation_FullMethodName: org(auth.RoleOperator,
		name("name", func(r any) string { return r.(*v1.CancelOperationRequest).GetName() })),
	v1.OperationService_WaitOperation_FullMethodName: org(auth.RoleViewer,
		name("name", func(r any) string { return r.(*v1.WaitOperationRequest).GetName() })),
}

// publicMethods need no API key: health. (Reflection is served on the
// internal listener only.)
var publicPrefixes = []string{"/grpc.health.v1.Health/"}
