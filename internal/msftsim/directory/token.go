package directory

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AuthError is a token-endpoint failure: an AADSTS code and its OAuth error.
type AuthError struct {
	Status      int
	OAuthError  string // invalid_client, unauthorized_client, invalid_request, ...
	Code        int    // AADSTS number
	Description string // without the "AADSTSnnn: " prefix
}

func (e *AuthError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.Code, e.Description) }

func authErr(status int, oauth string, code int, format string, a ...any) *AuthError {
	return &AuthError{Status: status, OAuthError: oauth, Code: code, Description: fmt.Sprintf(format, a...)}
}

// AuthRequest is a client-credentials token request, already parsed.
type AuthRequest struct {
	Tenant   string // path segment: GUID or domain
	ClientID string
	Secret   string // set for client_secret
	// Assertion, when set, finds the signing certificate by thumbprint and
	// verifies the client assertion with it.
	AssertionSHA1   []byte
	AssertionSHA256 []byte
	VerifyAssertion func(*x509.Certificate) error
	Resource        string // scope without "/.default"
}

// AuthResult is what the issued token says.
type AuthResult struct {
	TenantID       string
	AppID          string
	AppDisplayName string
	SPObjectID     string
	ResourceAppID  string
	Roles          []string
}

// Authenticate checks a client-credentials request in Entra's order and
// returns the caller and the roles its token carries on the resource.
func (d *Directory) Authenticate(req AuthRequest) (AuthResult, *AuthError) {
	if !ValidTenantIdentifier(req.Tenant) {
		return AuthResult{}, authErr(400, "invalid_request", 900023,
			"Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", req.Tenant)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(req.Tenant)
	if t == nil {
		return AuthResult{}, authErr(400, "invalid_request", 90002,
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "+
				"Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", req.Tenant)
	}
	if !SignsInGlobally(t.Cloud) {
		// The tenant lives in another cloud: this (global) authority does
		// not issue app-only tokens for it.
		return AuthResult{}, TokenError(900382, req.ClientID, req.Tenant)
	}
	now := d.clock.Now()
	clientID := strings.ToLower(req.ClientID)
	sp := t.spsByAppID[clientID]
	app := d.homeApp(t, clientID)
	if sp == nil && app != nil && app.TenantID == t.ID && app.vis.seen(now) {
		// Registered here, but its service principal is gone (or was
		// never created): Entra answers AADSTS7000229, not 700016.
		return AuthResult{}, TokenError(7000229, req.ClientID, t.ID)
	}
	if sp == nil || app == nil || !sp.vis.seen(now) || (app.TenantID == t.ID && !app.vis.seen(now)) {
		return AuthResult{}, authErr(400, "unauthorized_client", 700016,
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been "+
				"installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your "+
				"authentication request to the wrong tenant.", req.ClientID, t.DisplayName)
	}
	if !sp.AccountEnabled {
		return AuthResult{}, authErr(400, "unauthorized_client", 7000112, "Application '%s'(%s) is disabled.", app.AppID, app.DisplayName)
	}
	if req.VerifyAssertion != nil {
		if e := checkAssertion(app, req, now); e != nil {
			return AuthResult{}, e
		}
	} else {
		if e := checkSecret(app, req.Secret, now); e != nil {
			return AuthResult{}, e
		}
	}
	if t.caBlocked["*"] || t.caBlocked[clientID] {
		return AuthResult{}, authErr(400, "invalid_grant", 53003,
			"Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	}
	resAppID, ok := ResourceAppIDForAudience(req.Resource)
	var res *ServicePrincipal
	if ok {
		res = t.spsByAppID[resAppID]
	}
	if res == nil {
		return AuthResult{}, authErr(400, "invalid_resource", 500011,
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been "+
				"installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your "+
				"authentication request to the wrong tenant.", req.Resource, t.DisplayName)
	}
	if st := t.Licences[res.Licence]; res.Licence != "" && st == "suspended" {
		return AuthResult{}, authErr(400, "invalid_client", 650052,
			"The app is trying to access a service '%s'(%s) that your organization '%s' lacks a service principal for. "+
				"Contact your IT Admin to review the configuration of your service subscriptions or consent to the application "+
				"in order to create the required service principal.", res.AppID, res.DisplayName, t.ID)
	}
	out := AuthResult{TenantID: t.ID, AppID: app.AppID, AppDisplayName: app.DisplayName, SPObjectID: sp.ID, ResourceAppID: res.AppID}
	for _, a := range t.assignments {
		if a.PrincipalID != sp.ID || a.ResourceID != res.ID || !a.tokenVis.seen(now) {
			continue
		}
		if i := slices.IndexFunc(res.AppRoles, func(r AppRole) bool { return r.ID == a.AppRoleID }); i >= 0 {
			out.Roles = append(out.Roles, res.AppRoles[i].Value)
		}
	}
	slices.Sort(out.Roles)
	return out, nil
}

func checkSecret(app *Application, secret string, now time.Time) *AuthError {
	if secret == "" {
		return authErr(400, "invalid_request", 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
	}
	for _, p := range app.Passwords {
		if p.Secret != secret {
			continue
		}
		if !now.Before(p.End) {
			return authErr(401, "invalid_client", 7000222,
				"The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: "+
					"https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.AppID)
		}
		if p.vis.seen(now) {
			return nil
		}
		break
	}
	return authErr(401, "invalid_client", 7000215,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "+
			"not the client secret ID, for a secret added to app '%s'.", app.AppID)
}

func checkAssertion(app *Application, req AuthRequest, now time.Time) *AuthError {
	for _, k := range app.Keys {
		if k.Usage != "Verify" || k.Cert == nil {
			continue // only a key registered for verification signs assertions
		}
		s1 := sha1.Sum(k.Cert.Raw) //nolint:gosec
		s256 := sha256.Sum256(k.Cert.Raw)
		if !(len(req.AssertionSHA1) > 0 && bytes.Equal(req.AssertionSHA1, s1[:])) &&
			!(len(req.AssertionSHA256) > 0 && bytes.Equal(req.AssertionSHA256, s256[:])) {
			continue
		}
		if now.After(k.End) || now.Before(k.Start) {
			return authErr(401, "invalid_client", 700027,
				"Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '%X', "+
					"Found key 'Start=%s, End=%s']", s1[:], k.Start.Format("01/02/2006 15:04:05"), k.End.Format("01/02/2006 15:04:05"))
		}
		if err := req.VerifyAssertion(k.Cert); err != nil {
			return authErr(401, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - %v]", err)
		}
		return nil
	}
	tp := req.AssertionSHA1
	if len(tp) == 0 {
		tp = req.AssertionSHA256
	}
	return authErr(401, "invalid_client", 700027,
		"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was "+
			"not found., Thumbprint of key used by client: '%X', Please visit the Azure Portal, Graph Explorer or directly use MS Graph "+
			"to see configured keys for app Id '%s'.]", tp, app.AppID)
}
