package msftsim_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// assertionSpec is one hand-made client assertion (RS256), so a test can
// break exactly one of its parts.
type assertionSpec struct {
	cert       *x509.Certificate
	key        *rsa.PrivateKey
	sha256     bool // x5t#S256 instead of x5t
	aud        string
	iss, sub   string
	nbf, exp   time.Time
	badSignKey *rsa.PrivateKey // signs with another key than cert's
}

func signAssertion(t *testing.T, a assertionSpec) string {
	t.Helper()
	enc := base64.RawURLEncoding
	hdr := map[string]string{"alg": "RS256", "typ": "JWT"}
	if a.sha256 {
		s := sha256.Sum256(a.cert.Raw)
		hdr["x5t#S256"] = enc.EncodeToString(s[:])
	} else {
		s := sha1.Sum(a.cert.Raw) //nolint:gosec
		hdr["x5t"] = enc.EncodeToString(s[:])
	}
	claims := map[string]any{"aud": a.aud, "iss": a.iss, "sub": a.sub, "jti": "5d0c1a3e-8d4f-4a5b-9f0e-1c2d3e4f5a6b",
		"nbf": a.nbf.Unix(), "iat": a.nbf.Unix(), "exp": a.exp.Unix()}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	k := a.key
	if a.badSignKey != nil {
		k = a.badSignKey
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// postAssertion sends a client_credentials request with a client
// assertion and returns the status and the decoded answer.
func (e *env) postAssertion(tenant, clientID, assertion string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {msftsim.ResourceGraph + "/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	req, _ := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.tokenURL(tenant), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.sim.HTTPClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("token answer is not JSON: %s", b)
	}
	return resp.StatusCode, m
}

func (e *env) tokenURL(tenant string) string {
	return strings.TrimSuffix(e.ep.Authority, "/") + "/" + tenant + "/oauth2/v2.0/token"
}

func wantCode(t *testing.T, status int, m map[string]any, wantStatus, code int) {
	t.Helper()
	codes, _ := m["error_codes"].([]any)
	if status != wantStatus || len(codes) != 1 || codes[0].(float64) != float64(code) {
		t.Fatalf("want %d AADSTS%d, got %d %v", wantStatus, code, status, m)
	}
	if m["error"] != "invalid_client" && m["error"] != "invalid_request" {
		t.Fatalf("OAuth error %v", m["error"])
	}
}

// TestClientAssertionValidation: the token endpoint checks a certificate's
// client assertion the way Entra documents it (certificate-credentials,
// and the Azure SDK's troubleshooting tables for ClientCertificateCredential
// and ClientAssertionCredential): x5t or x5t#S256 names a registered key
// (usage Verify, within its dates) whose public key checks the RS256
// signature; iss = sub = client_id; aud the token endpoint; nbf/exp around
// now. A key removed from the application is refused.
func TestClientAssertionValidation(t *testing.T) {
	e := newEnv(t)
	cert, key, certPEM := newCert(t, t0.AddDate(1, 0, 0))
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", CertificatePEM: certPEM, Roles: []string{"User.Read.All"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // assertions are made on the client's wall clock
	good := assertionSpec{cert: cert, key: key, aud: e.tokenURL(e.tenant), iss: c.ClientID, sub: c.ClientID,
		nbf: now.Add(-time.Minute), exp: now.Add(9 * time.Minute)}
	other, otherKey, _ := newCert(t, t0.AddDate(1, 0, 0))

	for _, sha256 := range []bool{false, true} {
		a := good
		a.sha256 = sha256
		if st, m := e.postAssertion(e.tenant, c.ClientID, signAssertion(t, a)); st != 200 || m["access_token"] == nil {
			t.Fatalf("valid assertion (x5t#S256 %v): %d %v", sha256, st, m)
		}
	}
	tests := []struct {
		name   string
		mutate func(*assertionSpec)
		status int
		code   int
	}{
		{"signed with another key", func(a *assertionSpec) { a.badSignKey = otherKey }, 401, 700027},
		{"certificate not registered", func(a *assertionSpec) { a.cert, a.key = other, otherKey }, 401, 700027},
		{"issuer is not the client", func(a *assertionSpec) { a.iss = "00000000-0000-4000-8000-000000000000" }, 401, 700021},
		{"subject is not the client", func(a *assertionSpec) { a.sub = "00000000-0000-4000-8000-000000000000" }, 401, 700021},
		{"audience is not the token endpoint", func(a *assertionSpec) { a.aud = "https://example.com/" }, 401, 700023},
		{"expired", func(a *assertionSpec) { a.nbf, a.exp = now.Add(-time.Hour), now.Add(-50*time.Minute) }, 401, 700024},
		{"not yet valid", func(a *assertionSpec) { a.nbf, a.exp = now.Add(time.Hour), now.Add(70*time.Minute) }, 401, 700024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			tc.mutate(&a)
			st, m := e.postAssertion(e.tenant, c.ClientID, signAssertion(t, a))
			wantCode(t, st, m, tc.status, tc.code)
		})
	}
	st, m := e.postAssertion(e.tenant, c.ClientID, "not.a-jwt")
	wantCode(t, st, m, 400, 50027)

	// Removing the key from the application: the same assertion is refused
	// (AADSTS700027, the key was not found); azidentity's too.
	apps, err := e.admin.Applications(e.tenant, func(s msftsim.AppState) bool { return s.AppID == c.ClientID })
	if err != nil || len(apps) != 1 || len(apps[0].KeyIDs) != 1 {
		t.Fatalf("app state %v %v", apps, err)
	}
	if err := e.admin.RemoveAppKey(e.tenant, c.ClientID, apps[0].KeyIDs[0]); err != nil {
		t.Fatal(err)
	}
	st, m = e.postAssertion(e.tenant, c.ClientID, signAssertion(t, good))
	wantCode(t, st, m, 401, 700027)
	if d, _ := m["error_description"].(string); !strings.Contains(d, "The key was not found") {
		t.Fatalf("description %q", d)
	}
	_, err = e.token(e.certCred(e.tenant, c.ClientID, cert, key), msftsim.ResourceGraph)
	aadsts(t, err, 700027)
	if err := e.admin.RemoveAppKey(e.tenant, c.ClientID, apps[0].KeyIDs[0]); err == nil {
		t.Fatal("removing a removed key succeeded")
	}
}
