package msftsim_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

func TestTokenClientSecretCarriesClaimsAndRoles(t *testing.T) {
	e := newEnv(t)
	c := e.app("AuditLog.Read.All", "User.Read.All", "SecurityAlert.Read.All", "defender/Machine.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	m := claims(t, tok)
	want := map[string]any{"tid": e.tenant, "appid": c.ClientID, "azp": c.ClientID, "oid": c.SPObjectID,
		"aud": msftsim.ResourceGraph, "iss": e.ep.Base + "/" + e.tenant + "/v2.0", "appidacr": "1"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("claim %s = %v, want %v", k, m[k], v)
		}
	}
	if exp := int64(m["exp"].(float64)); exp != t0.Add(3599*time.Second).Unix() {
		t.Errorf("exp = %d, want sim clock + 3599s", exp)
	}
	if got := roleList(m); !slices.Equal(got, []string{"AuditLog.Read.All", "SecurityAlert.Read.All", "User.Read.All"}) {
		t.Errorf("graph roles = %v", got)
	}
	// Roles are per resource: the Defender token carries only Defender's.
	dtok := e.mustToken(e.credFor(c), msftsim.ResourceDefender)
	if got := roleList(claims(t, dtok)); !slices.Equal(got, []string{"Machine.Read.All"}) {
		t.Errorf("defender roles = %v", got)
	}
}

func TestTokenClientCertificateAssertion(t *testing.T) {
	e := newEnv(t)
	cert, key, certPEM := newCert(t, t0.AddDate(1, 0, 0))
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", CertificatePEM: certPEM, Roles: []string{"User.Read.All"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.mustToken(e.certCred(e.tenant, c.ClientID, cert, key), msftsim.ResourceGraph)
	m := claims(t, tok)
	if m["appidacr"] != "2" || m["appid"] != c.ClientID {
		t.Fatalf("claims %v", m)
	}
	// A certificate the app does not know: AADSTS700027.
	other, otherKey, _ := newCert(t, t0.AddDate(1, 0, 0))
	_, err = e.token(e.certCred(e.tenant, c.ClientID, other, otherKey), msftsim.ResourceGraph)
	aadsts(t, err, 700027)
	// The registered certificate after it expired: AADSTS700027 too.
	e.admin.AdvanceClock(366 * 24 * time.Hour)
	_, err = e.token(e.certCred(e.tenant, c.ClientID, cert, key), msftsim.ResourceGraph)
	aadsts(t, err, 700027)
}

func TestTokenErrorsCarryAADSTSCodes(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	bare, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Unlicensed", NoLicences: true})
	if err != nil {
		t.Fatal(err)
	}
	bareApp, err := e.admin.CreateApp(bare.ID, msftsim.AppRequest{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		setup    func()
		tenant   string
		clientID string
		secret   string
		resource string
		code     int
		status   int
	}{
		{"secret ID pasted instead of value", nil, e.tenant, c.ClientID, c.SecretKeyID, msftsim.ResourceGraph, 7000215, 401},
		{"unknown client ID", nil, e.tenant, "0b0b0b0b-0000-4000-8000-000000000000", c.ClientSecret, msftsim.ResourceGraph, 700016, 400},
		{"app from another tenant", nil, bare.ID, c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 700016, 400},
		{"unknown tenant", nil, "99999999-9999-4999-8999-999999999999", c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 90002, 400},
		{"malformed tenant", nil, "notadomain", c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 900023, 400},
		{"product not licensed", nil, bare.ID, bareApp.ClientID, bareApp.ClientSecret, msftsim.ResourceDefender, 500011, 400},
		{"licence suspended", func() {
			_ = e.admin.SetLicences(bare.ID, map[string]string{msftsim.LicenceLogAnalytics: "suspended"})
		}, bare.ID, bareApp.ClientID, bareApp.ClientSecret, msftsim.ResourceLogAnalytics, 650052, 400},
		{"app disabled", func() { _ = e.admin.SetAppEnabled(e.tenant, c.ClientID, false) }, e.tenant, c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 7000112, 400},
		{"conditional access", func() {
			_ = e.admin.SetAppEnabled(e.tenant, c.ClientID, true)
			_ = e.admin.BlockConditionalAccess(e.tenant, c.ClientID, true)
		}, e.tenant, c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 53003, 400},
		{"throttled", func() {
			_ = e.admin.BlockConditionalAccess(e.tenant, c.ClientID, false)
			e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{"entra.token": {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 7}}}}})
		}, e.tenant, c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 90055, 429},
		{"secret expired", func() {
			e.admin.SetFaults(faults.Config{})
			e.admin.ResetCounters()
			e.admin.AdvanceClock(2*365*24*time.Hour + time.Hour)
		}, e.tenant, c.ClientID, c.ClientSecret, msftsim.ResourceGraph, 7000222, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			_, err := e.token(e.secretCred(tc.tenant, tc.clientID, tc.secret), tc.resource)
			body := aadsts(t, err, tc.code)
			var afe *azidentity.AuthenticationFailedError
			_ = errorsAs(err, &afe)
			if afe.RawResponse.StatusCode != tc.status {
				t.Errorf("status %d, want %d", afe.RawResponse.StatusCode, tc.status)
			}
			if tc.status == 429 && afe.RawResponse.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q", afe.RawResponse.Header.Get("Retry-After"))
			}
			_ = body
		})
	}
}

func TestMissingConsentStillIssuesToken(t *testing.T) {
	e := newEnv(t)
	c := e.app() // no roles granted
	m := claims(t, e.mustToken(e.credFor(c), msftsim.ResourceGraph))
	if _, ok := m["roles"]; ok {
		t.Fatalf("token without consent carries roles: %v", m["roles"])
	}
}

func TestOpenIDMetadataJWKSAndSignature(t *testing.T) {
	e := newEnv(t)
	st, _, cfg := e.do("GET", e.ep.Authority+e.tenant+"/v2.0/.well-known/openid-configuration", "", nil)
	if st != 200 || cfg["token_endpoint"] != e.ep.Base+"/"+e.tenant+"/oauth2/v2.0/token" || cfg["issuer"] != e.ep.Base+"/"+e.tenant+"/v2.0" {
		t.Fatalf("openid-configuration %d %v", st, cfg)
	}
	st, _, jwks := e.do("GET", cfg["jwks_uri"].(string), "", nil)
	keys, _ := jwks["keys"].([]any)
	if st != 200 || len(keys) != 1 {
		t.Fatalf("jwks %d %v", st, jwks)
	}
	k := keys[0].(map[string]any)
	n, _ := base64.RawURLEncoding.DecodeString(k["n"].(string))
	eb, _ := base64.RawURLEncoding.DecodeString(k["e"].(string))
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(eb).Int64())}

	tok := e.mustToken(e.credFor(e.app("User.Read.All")), msftsim.ResourceGraph)
	parts := strings.Split(tok, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(hdr), `"kid":"`+k["kid"].(string)+`"`) || !strings.Contains(string(hdr), `"alg":"RS256"`) {
		t.Fatalf("token header %s does not name the JWKS key", hdr)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("token does not verify against JWKS: %v", err)
	}
	// Unknown tenants fail metadata discovery the way Entra does.
	st, _, body := e.do("GET", e.ep.Authority+"99999999-9999-4999-8999-999999999999/v2.0/.well-known/openid-configuration", "", nil)
	if st != 400 || !strings.HasPrefix(body["error_description"].(string), "AADSTS90002") {
		t.Fatalf("unknown tenant metadata: %d %v", st, body)
	}
}

// MSAL sends instance discovery to login.microsoftonline.com whatever the
// authority, so clients must set DisableInstanceDiscovery; the simulator
// still answers the call in Entra's shape for clients that ask it directly.
func TestInstanceDiscoveryShape(t *testing.T) {
	e := newEnv(t)
	st, _, m := e.do("GET", e.ep.Authority+"common/discovery/instance?api-version=1.1&authorization_endpoint="+
		e.ep.Base+"/"+e.tenant+"/oauth2/v2.0/authorize", "", nil)
	if st != 200 || m["tenant_discovery_endpoint"] != e.ep.Base+"/"+e.tenant+"/v2.0/.well-known/openid-configuration" {
		t.Fatalf("instance discovery %d %v", st, m)
	}
}

func errorsAs(err error, target any) bool { return errorsAsImpl(err, target) }

// Clients may reach the simulator as localhost or 127.0.0.1: metadata,
// issuer and links follow the host the client used.
func TestLocalhostAlias(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	alias := strings.Replace(e.ep.Base, "127.0.0.1", "localhost", 1)
	e.ep.Authority, e.ep.Graph, e.ep.Host = alias+"/", alias+"/v1.0", "localhost"
	g := e.graph(e.credFor(c))
	first, err := g.Users().Get(t.Context(), &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Top: ptr(int32(2))}})
	if err != nil {
		t.Fatalf("via localhost: %v", err)
	}
	if next := first.GetOdataNextLink(); next == nil || !strings.HasPrefix(*next, alias) {
		t.Fatalf("nextLink %v", next)
	}
	if iss := claims(t, e.mustToken(e.credFor(c), msftsim.ResourceGraph))["iss"]; iss != alias+"/"+e.tenant+"/v2.0" {
		t.Fatalf("iss %v", iss)
	}
}
