package microsoft

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// secretCredential is a session's client-secret credential: the OAuth 2.0
// client credentials grant (POST {authority}/{tenant}/oauth2/v2.0/token,
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
// made by the adapter itself, instead of an azidentity/MSAL client built
// for every session. A session is one check (or one provisioning's
// directory), so a token is still never shared between sessions: each
// session's first call for an API requests a new token, and later calls
// of the same session reuse it until shortly before it expires, as MSAL's
// per-credential cache did. Every request goes through the shared
// retryTransport (token requests are idempotent; Retry-After honoured);
// an answer other than 2xx is classified by mserr from Entra's body
// ({"error","error_codes","error_description"}), as azidentity's
// AuthenticationFailedError was. Certificates keep azidentity (the client
// assertion).
//
// No authority metadata is fetched: the token endpoint of an Entra
// authority is {authority}/{tenant}/oauth2/v2.0/token in every cloud, and
// an unknown or malformed tenant is refused there as it was by the
// metadata request (AADSTS90002, AADSTS900023).
type secretCredential struct {
	hc                       *http.Client
	endpoint                 string // the token endpoint
	clientID, secret, tenant string

	mu     sync.Mutex // one token request at a time per session
	tokens map[string]azcore.AccessToken
}

// tokenRefreshMargin: a cached token this close to its expiry is
// requested again (azidentity's margin).
const tokenRefreshMargin = 5 * time.Minute

// newSecretCredential returns the credential, or the classified reason the
// tenant ID cannot be used (azidentity's rule: letters, digits, '-', '.').
func newSecretCredential(hc *http.Client, authority, tenant, clientID, secret string) (*secretCredential, error) {
	if !validTenantID(tenant) {
		return nil, &mserr.Error{Service: "entra", Operation: "new session", Code: "AADSTS900023", Class: mserr.ClassTenantNotFound,
			Message: "invalid tenantID", Remedy: "The Directory (tenant) ID is malformed: enter the tenant's GUID or its verified domain."}
	}
	return &secretCredential{hc: hc, endpoint: strings.TrimSuffix(authority, "/") + "/" + tenant + "/oauth2/v2.0/token",
		clientID: clientID, secret: secret, tenant: tenant}, nil
}

func validTenantID(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// GetToken implements azcore.TokenCredential. Claims (a CAE challenge)
// always fetch a new token.
func (c *secretCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	scope := strings.Join(opts.Scopes, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.tokens[scope]; ok && opts.Claims == "" && time.Until(at.ExpiresOn) > tokenRefreshMargin {
		return at, nil
	}
	at, err := c.request(ctx, scope)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	if c.tokens == nil {
		c.tokens = map[string]azcore.AccessToken{}
	}
	c.tokens[scope] = at
	return at, nil
}

// tokenAnswer is the token endpoint's success body. expires_in is a
// number (a string in some older answers).
type tokenAnswer struct {
	AccessToken string          `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

func (c *secretCredential) request(ctx context.Context, scope string) (azcore.AccessToken, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.clientID}, "client_secret": {c.secret}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, mserr.Classify("entra", "", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(clientRequestIDHeader, uuid.NewString()) // set here: the transport need not copy the request for it
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return azcore.AccessToken{}, mserr.Classify("entra", "", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return azcore.AccessToken{}, mserr.Classify("entra", "", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return azcore.AccessToken{}, mserr.FromResponse("entra", "", resp.StatusCode, resp.Header, body)
	}
	var a tokenAnswer
	if json.Unmarshal(body, &a) != nil || a.AccessToken == "" {
		return azcore.AccessToken{}, &mserr.Error{Service: "entra", Status: resp.StatusCode, Code: "InvalidResponse", Class: mserr.ClassUnknown,
			Message: "the token endpoint's answer holds no access_token", Remedy: "Contact Dropzone support."}
	}
	secs, err := strconv.ParseInt(strings.Trim(string(a.ExpiresIn), `"`), 10, 64)
	if err != nil || secs <= 0 {
		secs = 3599 // Entra's usual lifetime; the claims' exp is read separately
	}
	return azcore.AccessToken{Token: a.AccessToken, ExpiresOn: start.Add(time.Duration(secs) * time.Second)}, nil
}
