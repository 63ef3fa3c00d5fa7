package msftsim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// t0 is where the frozen simulator clock starts in tests.
var t0 = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

const (
	subID = "11111111-2222-4333-8444-555555555555"
	rg    = "rg-sentinel"
	wsNm  = "ws-sentinel"
)

type env struct {
	t      *testing.T
	sim    *msftsim.Sim
	ep     msftsim.Endpoints
	admin  *msftsim.Admin
	tenant string
	ws     msftsim.Workspace
}

// newEnv starts a simulator with a frozen clock and one fully licensed
// tenant holding a Sentinel workspace.
func newEnv(t *testing.T, opts ...func(*msftsim.Options)) *env {
	t.Helper()
	o := msftsim.Options{Seed: 42, Now: t0}
	for _, f := range opts {
		f(&o)
	}
	sim, err := msftsim.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	track(sim)
	t.Cleanup(func() { _ = sim.Close() })
	e := &env{t: t, sim: sim, ep: sim.Endpoints(), admin: sim.Admin()}
	ti, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Contoso", Domain: "contoso.onmicrosoft.com", Users: 5})
	if err != nil {
		t.Fatalf("AddTenant: %v", err)
	}
	e.tenant = ti.ID
	if e.ws, err = e.admin.AddWorkspace(e.tenant, msftsim.Workspace{SubscriptionID: subID, ResourceGroup: rg, Name: wsNm}); err != nil {
		t.Fatalf("AddWorkspace: %v", err)
	}
	return e
}

// app creates a customer-managed app with roles and returns its credentials.
func (e *env) app(roles ...string) msftsim.AppCreds {
	e.t.Helper()
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles})
	if err != nil {
		e.t.Fatalf("CreateApp: %v", err)
	}
	return c
}

func (e *env) clientOptions(retries int) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     e.ep.CloudConfiguration(),
		Transport: e.sim.HTTPClient(),
		Retry:     policy.RetryOptions{MaxRetries: int32(retries), RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 3 * time.Second},
	}
}

// secretCred is the wiring dzconnect uses; retries are off unless asked for
// so errors surface as they come.
func (e *env) secretCred(tenant, clientID, secret string, retries ...int) azcore.TokenCredential {
	e.t.Helper()
	r := -1
	if len(retries) > 0 {
		r = retries[0]
	}
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: e.clientOptions(r), DisableInstanceDiscovery: true,
	})
	if err != nil {
		e.t.Fatalf("NewClientSecretCredential: %v", err)
	}
	return cred
}

func (e *env) certCred(tenant, clientID string, cert *x509.Certificate, key *rsa.PrivateKey) azcore.TokenCredential {
	e.t.Helper()
	cred, err := azidentity.NewClientCertificateCredential(tenant, clientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.clientOptions(-1), DisableInstanceDiscovery: true})
	if err != nil {
		e.t.Fatalf("NewClientCertificateCredential: %v", err)
	}
	return cred
}

func (e *env) credFor(c msftsim.AppCreds) azcore.TokenCredential {
	return e.secretCred(c.TenantID, c.ClientID, c.ClientSecret)
}

// token gets an access token for resource.
func (e *env) token(cred azcore.TokenCredential, resource string) (string, error) {
	tok, err := cred.GetToken(e.t.Context(), policy.TokenRequestOptions{Scopes: []string{resource + "/.default"}})
	return tok.Token, err
}

func (e *env) mustToken(cred azcore.TokenCredential, resource string) string {
	e.t.Helper()
	tok, err := e.token(cred, resource)
	if err != nil {
		e.t.Fatalf("GetToken(%s): %v", resource, err)
	}
	return tok
}

// graph builds the msgraph-sdk-go client the way dzconnect will.
func (e *env) graph(cred azcore.TokenCredential) *msgraphsdk.GraphServiceClient {
	e.t.Helper()
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred,
		[]string{"https://graph.microsoft.com/.default"}, []string{e.ep.Host})
	if err != nil {
		e.t.Fatalf("auth provider: %v", err)
	}
	opts := msgraphsdk.GetDefaultClientOptions()
	parent := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.sim.CAPool(), MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	hc := msgraphcore.GetDefaultClient(&opts)
	hc.Transport = khttp.NewCustomTransportWithParentTransport(parent, msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...)
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		e.t.Fatalf("request adapter: %v", err)
	}
	adapter.SetBaseUrl(e.ep.Graph)
	return msgraphsdk.NewGraphServiceClient(adapter)
}

// odata asserts err is a Graph OData error with status and code.
func odata(t *testing.T, err error, status int, code string) *odataerrors.ODataError {
	t.Helper()
	var oe *odataerrors.ODataError
	if !errors.As(err, &oe) {
		t.Fatalf("want ODataError %d %s, got %T %v", status, code, err, err)
	}
	got := ""
	if oe.GetErrorEscaped() != nil && oe.GetErrorEscaped().GetCode() != nil {
		got = *oe.GetErrorEscaped().GetCode()
	}
	if oe.ResponseStatusCode != status || got != code {
		t.Fatalf("want %d %s, got %d %s (%v)", status, code, oe.ResponseStatusCode, got, msgOf(oe))
	}
	return oe
}

func msgOf(oe *odataerrors.ODataError) string {
	if oe.GetErrorEscaped() != nil && oe.GetErrorEscaped().GetMessage() != nil {
		return *oe.GetErrorEscaped().GetMessage()
	}
	return ""
}

// aadsts asserts err is azidentity's AuthenticationFailedError whose Entra
// body carries code in error_codes, and returns the body.
func aadsts(t *testing.T, err error, code int) map[string]any {
	t.Helper()
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		t.Fatalf("want AuthenticationFailedError with AADSTS%d, got %T %v", code, err, err)
	}
	var body map[string]any
	b, _ := io.ReadAll(afe.RawResponse.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("error body is not JSON: %s", b)
	}
	codes, _ := body["error_codes"].([]any)
	if len(codes) != 1 || codes[0].(float64) != float64(code) {
		t.Fatalf("want error_codes [%d], got %v (%s)", code, body["error_codes"], b)
	}
	for _, k := range []string{"error", "error_description", "trace_id", "correlation_id", "timestamp"} {
		if body[k] == nil || body[k] == "" {
			t.Fatalf("error body lacks %s: %s", k, b)
		}
	}
	if d := body["error_description"].(string); !strings.HasPrefix(d, "AADSTS") {
		t.Fatalf("error_description does not start with AADSTS: %s", d)
	}
	return body
}

// claims decodes a JWT payload without verifying it.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decoding JWT: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

func roleList(m map[string]any) []string {
	var out []string
	rs, _ := m["roles"].([]any)
	for _, r := range rs {
		out = append(out, r.(string))
	}
	slices.Sort(out)
	return out
}

// do sends a plain net/http request (as dzconnect does for ARM and Log
// Analytics) and decodes the JSON answer.
func (e *env) do(method, url, token string, body any) (int, http.Header, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.sim.HTTPClient().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			e.t.Fatalf("%s %s: non-JSON body %q", method, url, b)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// newCert makes a self-signed RSA certificate for certificate credentials.
func newCert(t *testing.T, notAfter time.Time) (*x509.Certificate, *rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "contoso.dropzone.app"},
		NotBefore: t0.Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func ptr[T any](v T) *T { return &v }

var _ = context.Background

func errorsAsImpl(err error, target any) bool { return errors.As(err, target) }
