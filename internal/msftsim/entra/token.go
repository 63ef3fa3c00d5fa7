package entra

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// RouteToken is the route name of the token endpoint (for fault rules and counters).
const RouteToken = "entra.token"

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	seg := r.PathValue("tenant")
	info := observe.Annotate(r, RouteToken, seg)
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_request", Code: 900144,
			Description: "The request body must contain the following parameter: 'grant_type'."})
		return
	}
	f := r.PostForm
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	info.Client = clientID
	tenantKey := seg // fault rules are keyed by tenant ID; clients may sign in with a domain
	if t, ok := s.Dir.LookupTenant(seg); ok {
		tenantKey = t.ID
	}
	if d := s.Faults.Apply(r.Context(), RouteToken, tenantKey, clientID); d.Status != 0 {
		info.Fault = d.Kind
		if d.Status == 429 {
			w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
			s.writeError(w, r, &directory.AuthError{Status: 429, OAuthError: "temporarily_unavailable", Code: 90055,
				Description: "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants."})
			return
		}
		s.writeError(w, r, &directory.AuthError{Status: d.Status, OAuthError: "temporarily_unavailable", Code: 90033,
			Description: "A transient error has occurred. Please try again."})
		return
	}
	if code := s.Faults.TokenError(RouteToken, tenantKey); code != 0 {
		info.Fault = "token_error"
		s.writeError(w, r, directory.TokenError(code, clientID, seg))
		return
	}
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		if gt == "" {
			s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_request", Code: 900144,
				Description: "The request body must contain the following parameter: 'grant_type'."})
			return
		}
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "unsupported_grant_type", Code: 70003,
			Description: fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt)})
		return
	}
	if clientID == "" {
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_request", Code: 900144,
			Description: "The request body must contain the following parameter: 'client_id'."})
		return
	}
	resource := ""
	for _, sc := range strings.Fields(f.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			resource = strings.TrimSuffix(sc, "/.default")
		}
	}
	if resource == "" {
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_scope", Code: 1002012,
			Description: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value "+
				"with /.default suffixed to the resource identifier (application ID URI).", f.Get("scope"))})
		return
	}
	req := directory.AuthRequest{Tenant: seg, ClientID: clientID, Secret: secret, Resource: resource}
	acr := "1"
	if ca := f.Get("client_assertion"); ca != "" {
		acr = "2"
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_request", Code: 50027,
				Description: "Invalid client_assertion_type: expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer."})
			return
		}
		a, err := parseAssertion(ca)
		if err != nil {
			s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_request", Code: 50027,
				Description: "JWT token is invalid or malformed. " + err.Error()})
			return
		}
		if e := s.checkAssertionClaims(r, a, clientID); e != nil {
			s.writeError(w, r, e)
			return
		}
		req.AssertionSHA1, req.AssertionSHA256 = a.thumbprints()
		req.VerifyAssertion = a.verify
	}
	res, aerr := s.Dir.Authenticate(req)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	info.Tenant = res.TenantID
	now := s.Dir.Clock().Now()
	key := res.TenantID + "|" + res.AppID + "|" + resource + "|" + acr + "|" + strings.Join(res.Roles, ",")
	if s.ReuseWindow > 0 {
		if v, ok := s.reuse.Load(key); ok {
			if is := v.(*issued); now.Sub(is.at) < s.ReuseWindow && now.Before(is.exp) {
				secs := int(is.exp.Sub(now).Seconds())
				writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": is.token})
				return
			}
		}
	}
	iss := s.issuer(r, res.TenantID)
	claims := &Claims{
		Aud: resource, Iss: iss, Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(TokenLifetime).Unix(),
		AppDisplayName: res.AppDisplayName, AppID: res.AppID, AppIDAcr: acr, Azp: res.AppID, AzpAcr: acr, Idp: iss,
		Oid: res.SPObjectID, Sub: res.SPObjectID, Tid: res.TenantID, Roles: res.Roles, Ver: "2.0", IdTyp: "app",
		Uti: strings.ReplaceAll(s.Dir.NewID(), "-", "")[:22], Rh: "0.msftsim.",
		WallExp: wallNow().Add(TokenLifetime).Unix(),
	}
	tok, err := s.Signer.Sign(claims)
	if err != nil {
		s.writeError(w, r, &directory.AuthError{Status: 500, OAuthError: "server_error", Code: 90033, Description: err.Error()})
		return
	}
	if s.ReuseWindow > 0 {
		s.reuse.Store(key, &issued{token: tok, at: now, exp: now.Add(TokenLifetime)})
	}
	secs := int(TokenLifetime.Seconds())
	writeJSON(w, 200, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok,
	})
}

// checkAssertionClaims checks the assertion's issuer, subject, audience and
// lifetime. Assertions are made on the client's wall clock, so their
// lifetime is checked against wall time, not the simulator clock.
func (s *Server) checkAssertionClaims(r *http.Request, a *assertion, clientID string) *directory.AuthError {
	if !strings.EqualFold(a.claims.Iss, clientID) || !strings.EqualFold(a.claims.Sub, clientID) {
		return &directory.AuthError{Status: 401, OAuthError: "invalid_client", Code: 700021,
			Description: "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials ."}
	}
	okAud := false
	for _, aud := range a.audiences() {
		if strings.EqualFold(aud, s.base(r)+r.URL.Path) || strings.HasSuffix(strings.ToLower(aud), "/oauth2/v2.0/token") || strings.HasSuffix(strings.ToLower(aud), "/oauth2/token") {
			okAud = true
		}
	}
	if !okAud {
		// AADSTS700023 for a certificate's assertion (Azure SDK troubleshooting,
		// ClientAssertionCredential); 700212 is the federated-credential variant.
		return &directory.AuthError{Status: 401, OAuthError: "invalid_client", Code: 700023,
			Description: "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials ."}
	}
	now := wallNow().Unix()
	if a.claims.Exp != 0 && now > a.claims.Exp+300 || a.claims.Nbf != 0 && now+300 < a.claims.Nbf {
		return &directory.AuthError{Status: 401, OAuthError: "invalid_client", Code: 700024,
			Description: "Client assertion is not within its valid time range."}
	}
	return nil
}
