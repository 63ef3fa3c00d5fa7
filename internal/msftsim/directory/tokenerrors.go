package directory

import "strings"

// The sign-in errors an app-only (client credentials) token request meets,
// as Entra answers them: HTTP status, OAuth error and the description after
// "AADSTSnnn: " (Microsoft's reference-error-codes texts; the status and
// OAuth error of the codes Microsoft documents only by text are those of
// the nearest documented family). Authenticate produces the ones a
// simulated condition causes (7000229: an app without a service principal
// in its tenant; 900382: a tenant of another cloud); fault rules
// (faults.Rule.TokenErrors) produce any of them on demand.
var tokenErrors = map[int]struct {
	status int
	oauth  string
	desc   string // %[1]s: client ID, %[2]s: tenant
}{
	90072: {400, "invalid_grant", "PassThroughUserMfaError - The external account that the user signs in with doesn't exist on the " +
		"tenant that they signed into; so the user can't satisfy the MFA requirements for the tenant. The account must be added as an " +
		"external user in the tenant first."},
	7000229: {401, "invalid_client", "The client application %[1]s is missing service principal in the tenant %[2]s. " +
		"See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"},
	900382: {400, "invalid_request", "Confidential Client is not supported in Cross Cloud request."},
	900432: {400, "invalid_request", "Confidential Client is not supported in Cross Cloud request."},
	90038: {400, "invalid_request", "NationalCloudTenantRedirection - The specified tenant '%[2]s' belongs to another National Cloud. " +
		"Current cloud instance does not federate with it."},
	70001:   {400, "unauthorized_client", "UnauthorizedClient - The application is disabled."},
	50001:   {400, "invalid_resource", "InvalidResource - The resource is disabled or doesn't exist."},
	530032:  {400, "invalid_grant", "BlockedByConditionalAccessOnSecurityPolicy - The tenant admin has configured a security policy that blocks this request."},
	7000218: {401, "invalid_client", "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
	700024:  {401, "invalid_client", "Client assertion is not within its valid time range."},
	7000112: {400, "unauthorized_client", "Application '%[1]s' is disabled."},
	53003:   {400, "invalid_grant", "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."},
	7000215: {401, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%[1]s'."},
	700016:  {400, "unauthorized_client", "Application with identifier '%[1]s' was not found in the directory '%[2]s'."},
	90002:   {400, "invalid_tenant", "Tenant '%[2]s' not found."},
}

// TokenErrorCodes lists the AADSTS codes TokenError knows, for docs and tests.
func TokenErrorCodes() []int {
	out := make([]int, 0, len(tokenErrors))
	for c := range tokenErrors {
		out = append(out, c)
	}
	return out
}

// TokenError is Entra's answer for AADSTS code to a token request of
// clientID in tenant. An unknown code answers 400 invalid_request with a
// description saying it was injected.
func TokenError(code int, clientID, tenant string) *AuthError {
	te, ok := tokenErrors[code]
	if !ok {
		return authErr(400, "invalid_request", code, "Error injected by msftsim (code not in its table).")
	}
	if !strings.Contains(te.desc, "%[") {
		return authErr(te.status, te.oauth, code, "%s", te.desc)
	}
	// Explicit argument indexes: an unused argument is no EXTRA.
	return authErr(te.status, te.oauth, code, te.desc, clientID, tenant)
}
