package mserr

// The classification table, from shared/reference/microsoft.md sections 4
// (token errors), 5 (replication lag) and 6 (throttling), plus what Graph,
// ARM, Log Analytics and Defender answer for the probes dzconnect runs.
// docs/microsoft-errors.md renders it for people; keep both in step.
//
// A rule matches when every condition it sets holds: the service, the HTTP
// status, one of the error's codes (Entra's error_codes as "AADSTS<n>",
// otherwise error.code and the codes of inner errors and details), and one
// of the lower-case message fragments. Rules are tried in order; the first
// match wins; then the status fallbacks apply.
//
// Message fragments are used only where Microsoft's code alone is
// ambiguous: Graph and Defender answer 403 "Forbidden" both for a missing
// application role ("Missing application roles. API required roles: ...")
// and for a product the tenant has not licensed or onboarded ("Account is
// not provisioned", "Tenant is not onboarded ..."), and Graph answers 400
// "Request_BadRequest" for several replication-lag cases.

type rule struct {
	service string   // "" any
	status  int      // 0 any
	code    string   // "" any; compared case-insensitively
	msg     []string // lower-case fragments, any of which must occur; nil: none needed
	class   Class
	lag     bool
	remedy  string
}

// Remedies shared by several rules.
const (
	remedyNotLicensed = "The product behind this API is not licensed or not onboarded in the customer tenant. " +
		"License and onboard it (Microsoft Defender portal / Microsoft 365 admin center), or turn the feature off for this integration."
	remedyGraphPermission = "Add the missing Microsoft Graph application permission to the app (App registrations > API permissions), " +
		"then select \"Grant admin consent\". A fresh grant can take a minute to reach tokens."
	remedyProductPermission = "Add the missing application permission for this API to the app (App registrations > API permissions > " +
		"APIs my organization uses), then select \"Grant admin consent\"."
	remedyThrottled = "Microsoft is throttling requests for this tenant or app; dzconnect waited as long as Microsoft asked and will check again later. " +
		"Nothing to do unless it persists."
	remedyTransient  = "A temporary Microsoft service error; dzconnect retried and will check again later. Nothing to do unless it persists."
	remedyDzconnect  = "Microsoft refused a request dzconnect built; contact Dropzone support with the error code."
	remedyWrongCloud = "The customer tenant is in a different Microsoft cloud than the one set on the dzconnect tenant. Set the " +
		"tenant's cloud field (tenant.cloud: CLOUD_GLOBAL, CLOUD_US_GOV_GCC_HIGH, CLOUD_US_GOV_DOD or CLOUD_CHINA) to the cloud " +
		"the customer tenant lives in; the field cannot be changed, so create the tenant again with the right cloud and its integrations under it."
	remedyWrongAudience = "The API refused the access token as issued for another audience: dzconnect's endpoints configuration " +
		"(audiences for the tenant's cloud) is wrong. Operator: fix the configured audiences; nothing for the customer admin to do."
	remedyPolicyCred = "The tenant's app management policy restricts client secrets for this app. Exempt the app from the policy, " +
		"allow a longer lifetime, or use a certificate credential."
)

// Message fragments for the ambiguous 403 "Forbidden".
var (
	permissionWords = []string{"missing application roles", "required roles", "required application permission",
		"insufficient privileges", "does not have any of the required", "does not have authorization", "not authorized",
		"permission"}
	licenceWords = []string{"not provisioned", "not onboarded", "license", "licence", "licensed", "premium",
		"subscription is required", "not enabled for this tenant"}
)

var table = []rule{
	// Entra token endpoint (section 4): classify on error_codes.
	{code: "AADSTS7000215", class: ClassInvalidSecret, lag: true,
		remedy: "Re-enter the client secret's Value (not its Secret ID) from App registrations > Certificates & secrets. " +
			"A secret created in the last minute may still be propagating."},
	{code: "AADSTS7000216", class: ClassInvalidSecret,
		remedy: "No client secret was sent: enter the client secret's Value."},
	{code: "AADSTS7000222", class: ClassExpiredSecret,
		remedy: "The client secret has expired. Rotate: create a new client secret (App registrations > Certificates & secrets > " +
			"New client secret) and enter its Value, or let dzconnect rotate it."},
	{code: "AADSTS700016", class: ClassAppNotFound, lag: true,
		remedy: "No application with this client ID exists in this tenant. Check the Application (client) ID and the Directory (tenant) ID; " +
			"the app may have been deleted. A newly registered app can take a minute to appear."},
	{code: "AADSTS90002", class: ClassTenantNotFound,
		remedy: "The tenant was not found. Check the Directory (tenant) ID (Entra admin center > Overview) and the tenant's cloud (global, " +
			"US Government, China). Neither can be changed on a dzconnect tenant: if either is wrong, delete the tenant (dzctl tenant delete) " +
			"and create it again with the right values, then its integrations under it."},
	{code: "AADSTS900023", class: ClassTenantNotFound,
		remedy: "The Directory (tenant) ID is malformed: enter the tenant's GUID or its verified domain."},
	// 90072 is PassThroughUserMfaError (reference-error-codes): an
	// external account that does not exist in the tenant signed in to.
	{code: "AADSTS90072", class: ClassWrongTenant,
		remedy: "The identity signing in does not belong to this tenant. For admin consent: sign in with an administrator account " +
			"of the customer tenant itself, not a guest or an account of another tenant (or add that account to the tenant first). " +
			"For the integration's own sign-in: the client ID and secret belong to another tenant; check the Directory (tenant) ID."},
	{code: "AADSTS7000229", class: ClassNoServicePrincipal, lag: true,
		remedy: "The application has no service principal (enterprise application) in this tenant, so it cannot sign in here. " +
			"A customer administrator creates it by granting admin consent to the app in this tenant (App registrations > the app > " +
			"API permissions > Grant admin consent, or dzconnect's admin-consent link). A service principal created in the last " +
			"minute may still be replicating."},
	{code: "AADSTS900382", class: ClassWrongCloud, remedy: remedyWrongCloud},
	{code: "AADSTS900432", class: ClassWrongCloud, remedy: remedyWrongCloud},
	{code: "AADSTS90038", class: ClassWrongCloud, remedy: remedyWrongCloud},
	{code: "AADSTS70001", class: ClassAppDisabled,
		remedy: "The application is disabled in the tenant. Enable it: Enterprise applications > the app > Properties > " +
			"\"Enabled for users to sign in?\" = Yes (if it was deleted, register it again)."},
	{code: "AADSTS50001", class: ClassNotLicensed,
		remedy: "The API's resource application is disabled or not present in the customer tenant: license and onboard the product " +
			"behind it, or turn the feature off for this integration. If the product is in use, the token audience configured in " +
			"dzconnect for the tenant's cloud is wrong (operator: check the endpoints configuration)."},
	{code: "AADSTS530032", class: ClassPolicyBlocked,
		remedy: "A security policy of the customer tenant blocks this application's sign-in. In the Entra admin center, open Sign-in " +
			"logs > Service principal sign-ins for the app to see which policy; exclude the app's service principal from it or allow " +
			"Dropzone's network."},
	{code: "AADSTS7000218", class: ClassNotConfigured,
		remedy: "dzconnect sent the token request without a client secret or assertion: the stored credential is empty or dzconnect " +
			"is misconfigured. Re-enter the client secret; if it persists, contact Dropzone support."},
	{code: "AADSTS700024", class: ClassNotConfigured,
		remedy: "The client assertion dzconnect signed with the certificate is outside its valid time range: the clock of the " +
			"dzconnect host is off. Operator: synchronize the host's clock (NTP). Nothing for the customer admin to do."},
	{code: "AADSTS500011", class: ClassNotLicensed, remedy: remedyNotLicensed},
	{code: "AADSTS650052", class: ClassNotLicensed, remedy: remedyNotLicensed},
	{code: "AADSTS700027", class: ClassCertificateInvalid,
		remedy: "The certificate credential is missing, expired or replaced. Upload the Dropzone certificate again " +
			"(App registrations > Certificates & secrets > Certificates), or let dzconnect generate a new one (GenerateCertificateCredential)."},
	// Certificate and client-assertion errors (certificate credentials,
	// issue 9 item 4): Microsoft's Azure SDK troubleshooting tables for
	// ClientCertificateCredential / ClientAssertionCredential, and the
	// certificate error codes Microsoft.Identity.Web retries with a reloaded
	// certificate (docs/microsoft-errors.md names the sources).
	{code: "AADSTS7000274", class: ClassCertificateInvalid,
		remedy: "The certificate is outside its validity period. Generate a new certificate credential (GenerateCertificateCredential) " +
			"or upload a valid one."},
	{code: "AADSTS1000502", class: ClassCertificateInvalid,
		remedy: "The certificate is outside its validity window. Generate a new certificate credential (GenerateCertificateCredential) " +
			"or upload a valid one."},
	{code: "AADSTS7000214", class: ClassCertificateInvalid,
		remedy: "The certificate has been revoked. Generate a new certificate credential (GenerateCertificateCredential)."},
	{code: "AADSTS7000277", class: ClassCertificateInvalid,
		remedy: "The certificate has been revoked. Generate a new certificate credential (GenerateCertificateCredential)."},
	{code: "AADSTS700021", class: ClassBadRequest, remedy: "The client assertion's issuer or subject is not the client ID: " + remedyDzconnect},
	{code: "AADSTS700023", class: ClassBadRequest, remedy: "The client assertion's audience is not this cloud's token endpoint: " + remedyDzconnect},
	{code: "AADSTS50027", class: ClassBadRequest, remedy: "The client assertion is malformed: " + remedyDzconnect},
	{code: "AADSTS7000112", class: ClassAppDisabled,
		remedy: "The application is disabled in the tenant. Enable it: Enterprise applications > the app > Properties > " +
			"\"Enabled for users to sign in?\" = Yes."},
	{code: "AADSTS53003", class: ClassPolicyBlocked,
		remedy: "A Conditional Access policy blocks this application's sign-in. Exclude the app's service principal from the policy " +
			"(Entra admin center > Protection > Conditional Access) or allow it from Dropzone's network."},
	{code: "AADSTS90055", class: ClassThrottled, remedy: remedyThrottled},
	{code: "AADSTS50196", class: ClassThrottled, remedy: remedyThrottled},
	{code: "AADSTS90033", class: ClassTransient, remedy: remedyTransient},
	{code: "AADSTS1002012", class: ClassBadRequest, remedy: "The token scope does not fit this cloud: " + remedyDzconnect},
	{code: "AADSTS70011", class: ClassBadRequest, remedy: "The token scope does not fit this cloud: " + remedyDzconnect},

	// Graph (section 5 replication lag first: the codes are shared with real failures).
	{code: "Authorization_RequestDenied", msg: []string{"backing application of the service principal"},
		class: ClassNotReplicated, lag: true, remedy: "The new application has not replicated yet; dzconnect retries."},
	{code: "Request_BadRequest", msg: []string{"does not reference a valid application object"},
		class: ClassNotReplicated, lag: true, remedy: "The new application has not replicated yet; dzconnect retries."},
	{code: "Request_BadRequest", msg: []string{"not a valid reference update"},
		class: ClassNotReplicated, lag: true, remedy: "The new service principal has not replicated yet; dzconnect retries."},
	{code: "Request_BadRequest", msg: []string{"concurrent requests being made"},
		class: ClassConflict, lag: true, remedy: "Another credential change on the app was in flight; dzconnect serializes and retries."},
	// "Already exists" answers of writes: the caller re-reads and takes the
	// existing object as success.
	{code: "Request_BadRequest", msg: []string{"permission being assigned already exists"},
		class: ClassConflict, remedy: "The app role assignment already exists; nothing to do."},
	{code: "Request_BadRequest", msg: []string{"conflicting object with one or more of the specified property values"},
		class: ClassConflict, remedy: "The object (e.g. the directory role assignment) already exists; nothing to do."},
	{code: "Request_MultipleObjectsWithSameKeyValue", class: ClassConflict,
		remedy: "An object with the same key already exists (e.g. the app's service principal); dzconnect uses it."},
	{code: "Error_MsaAppDoesNotExist", class: ClassNotReplicated, lag: true,
		remedy: "The new application has not replicated yet; dzconnect retries."},
	{code: "Request_ResourceNotFound", class: ClassNotFound, lag: true,
		remedy: "The directory object does not exist (or, if it was just created, has not replicated yet)."},
	{code: "CredentialTypeNotAllowedAsPerAppPolicy", class: ClassPolicyBlocked, remedy: remedyPolicyCred},
	{code: "CredentialInvalidLifetimeAsPerAppPolicy", class: ClassPolicyBlocked, remedy: remedyPolicyCred},
	{code: "Authentication_RequestFromNonPremiumTenantOrB2CTenant", class: ClassNotLicensed,
		remedy: "Sign-in logs need a Microsoft Entra ID P1 or P2 licence in the customer tenant. License it, or ignore this probe."},
	{code: "Authorization_RequestDenied", class: ClassPermissionMissing, lag: true, remedy: remedyGraphPermission},

	// ARM (Sentinel workspace).
	{code: "PrincipalNotFound", class: ClassNotReplicated, lag: true,
		remedy: "The service principal has not replicated to Azure yet; dzconnect retries."},
	{code: "RoleAssignmentExists", class: ClassConflict, remedy: "The role assignment already exists; nothing to do."},
	{code: "AuthorizationFailed", class: ClassPermissionMissing, lag: true,
		remedy: "Give the app the \"Microsoft Sentinel Reader\" role on the workspace's resource group (Azure portal > resource group > " +
			"Access control (IAM) > Add role assignment). New role assignments take a few minutes to apply."},
	{code: "InvalidAuthenticationTokenTenant", class: ClassNotFound,
		remedy: "The subscription belongs to a different tenant than the integration. Check the subscription ID and the tenant ID."},
	{code: "SubscriptionNotFound", class: ClassNotFound,
		remedy: "The subscription was not found. Check the Sentinel subscription ID (it must belong to the customer tenant)."},
	{code: "ResourceGroupNotFound", class: ClassNotFound,
		remedy: "The resource group was not found. Check the Sentinel resource group name."},
	{service: "arm", code: "ResourceNotFound", class: ClassNotFound,
		remedy: "The Log Analytics workspace was not found. Check the workspace name, resource group and subscription."},
	{code: "ExpiredAuthenticationToken", class: ClassTransient, remedy: "The access token expired in flight; dzconnect fetches a new one."},
	// A token the API does not accept for its audience (Graph 401
	// InvalidAuthenticationToken "Invalid audience", ARM
	// InvalidAuthenticationTokenAudience): dzconnect asked Entra for the
	// wrong resource, a configuration error, not a missing permission.
	{code: "InvalidAuthenticationToken", msg: []string{"expired"}, class: ClassTransient,
		remedy: "The access token expired in flight; dzconnect fetches a new one."},
	{code: "InvalidAuthenticationToken", class: ClassNotConfigured, remedy: remedyWrongAudience},
	{code: "InvalidAuthenticationTokenAudience", class: ClassNotConfigured, remedy: remedyWrongAudience},

	// Log Analytics query API.
	{code: "InsufficientAccessError", class: ClassPermissionMissing, lag: true,
		remedy: "Grant the app the Log Analytics API application permission Data.Read with admin consent, and the " +
			"\"Log Analytics Reader\" or \"Microsoft Sentinel Reader\" role on the workspace or its resource group."},
	{code: "WorkspaceNotFoundError", class: ClassNotFound,
		remedy: "No workspace has this Workspace ID. Enter the workspace's Workspace ID (Log Analytics workspace > Overview), not its name."},

	// Throttling and server errors answered with a code (section 6).
	{code: "TooManyRequests", class: ClassThrottled, remedy: remedyThrottled},
	{code: "serviceNotAvailable", class: ClassTransient, remedy: remedyTransient},
	{code: "ServiceUnavailable", class: ClassTransient, remedy: remedyTransient},
	{code: "generalException", status: 500, class: ClassTransient, remedy: remedyTransient},

	// Graph and Defender answer 403 "Forbidden" for both a missing role and
	// a product not licensed or onboarded: the message tells them apart.
	{service: "graph", status: 403, msg: permissionWords, class: ClassPermissionMissing, lag: true, remedy: remedyGraphPermission},
	{service: "graph", status: 403, msg: licenceWords, class: ClassNotLicensed, remedy: remedyNotLicensed},
	{status: 403, msg: permissionWords, class: ClassPermissionMissing, lag: true, remedy: remedyProductPermission},
	{status: 403, msg: licenceWords, class: ClassNotLicensed, remedy: remedyNotLicensed},
}

// byStatus is the fallback when no rule matches. A 401/403 may be a grant
// that has not reached tokens yet (section 5: about 30 s after consent).
func byStatus(status int) (Class, string, bool) {
	switch {
	case status == 429:
		return ClassThrottled, remedyThrottled, false
	case status == 401:
		return ClassPermissionMissing, "The API refused the access token. Check the app's permissions and admin consent for this API, " +
			"and that the tenant's cloud is set correctly.", true
	case status == 403:
		return ClassPermissionMissing, remedyProductPermission, true
	case status == 404:
		return ClassNotFound, "The resource was not found. Check the identifiers entered for this integration.", false
	case status == 409:
		return ClassConflict, "The object already exists or changed concurrently; dzconnect reconciles it.", false
	case status == 408 || status >= 500:
		return ClassTransient, remedyTransient, false
	case status >= 400:
		return ClassBadRequest, remedyDzconnect, false
	}
	return ClassUnknown, "An unexpected answer from Microsoft; contact Dropzone support with the error code.", false
}
