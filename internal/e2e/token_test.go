package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// newConsumerKey makes an API key with the consumer role in org.
func newConsumerKey(t testing.TB, s *stack.Stack, adminCtx context.Context, org string) string {
	t.Helper()
	k, err := s.Clients().Keys.CreateApiKey(adminCtx, &v1.CreateApiKeyRequest{Parent: org,
		ApiKey: &v1.ApiKey{DisplayName: "platform", Role: v1.Role_ROLE_CONSUMER}})
	if err != nil {
		t.Fatalf("CreateApiKey consumer: %v", err)
	}
	return k.GetSecret()
}

// graphStatus calls msftsim's Graph with a bearer token, as a platform
// holding an issued token would, and returns the HTTP status.
func graphStatus(t *testing.T, sim *msftsim.Sim, tok string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CAPool(), MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, sim.Endpoints().Graph+"/users?$top=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestIssueAccessToken: a consumer key gets a Graph token that msftsim's
// Graph accepts; concurrent first calls make one token request (single
// flight); later calls get the same token from the cache; the key can do
// nothing else; bad input is refused naming the field.
func TestIssueAccessToken(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	clientID := in.GetApplication().GetClientId()
	consumer := newConsumerKey(t, f.s, f.org.AdminCtx, f.org.Name)
	tokens := v1.NewTokenServiceClient(f.s.Conn)
	a := f.sim.Admin()

	// N concurrent first calls: one token request at Microsoft.
	before := a.TokenRequests(clientID)
	const n = 16
	got := make([]*v1.IssueAccessTokenResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = tokens.IssueAccessToken(stack.Ctx(t, consumer),
				&v1.IssueAccessTokenRequest{Integration: name, Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("IssueAccessToken %d: %v\nlogs:\n%s", i, errs[i], f.s.Logs.String())
		}
		if got[i].GetAccessToken() != got[0].GetAccessToken() {
			t.Fatalf("concurrent first calls got different tokens")
		}
	}
	if d := a.TokenRequests(clientID) - before; d != 1 {
		t.Fatalf("%d concurrent first calls made %d token requests, want 1", n, d)
	}
	first := got[0]
	if first.GetApi() != v1.MicrosoftApi_MICROSOFT_API_GRAPH || !strings.HasSuffix(first.GetScope(), "/.default") ||
		!first.GetExpireTime().AsTime().After(time.Now()) || !strings.HasPrefix(first.GetCredential(), name+"/credentials/") {
		t.Fatalf("response %v", first)
	}
	if strings.Contains(f.s.Logs.String(), first.GetAccessToken()) {
		t.Fatal("the token is in the server's logs")
	}

	// msftsim's Graph accepts it.
	if st := graphStatus(t, f.sim, first.GetAccessToken()); st != http.StatusOK {
		t.Fatalf("Graph with the issued token: %d", st)
	}

	// Cache hit: the same token, no request.
	before = a.TokenRequests(clientID)
	for range 5 {
		r, err := tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: name, Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetAccessToken() != first.GetAccessToken() {
			t.Fatal("a cached call returned another token")
		}
	}
	if d := a.TokenRequests(clientID) - before; d != 0 {
		t.Fatalf("cached calls made %d token requests", d)
	}

	// Bad input: InvalidArgument naming the field.
	_, err := tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: name})
	wantViolation(t, err, "api")
	_, err = tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: "organizations/x", Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
	wantViolation(t, err, "integration")
	// An API the integration does not use (Defender without live_response).
	_, err = tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: name, Api: v1.MicrosoftApi_MICROSOFT_API_LOG_ANALYTICS})
	wantViolation(t, err, "api")
	// An integration that does not exist.
	other, _ := resource.ParseIntegration("name", name)
	other.Integration = other.Tenant // any other ID
	_, err = tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: other.String(), Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
	wantCode(t, err, codes.NotFound)

	// The consumer key may do nothing else.
	_, err = f.s.Clients().Integrations.GetIntegration(stack.Ctx(t, consumer), &v1.GetIntegrationRequest{Name: name})
	wantCode(t, err, codes.PermissionDenied)
	_, err = f.s.Clients().Catalog.GetPermissionCatalog(stack.Ctx(t, consumer), &v1.GetPermissionCatalogRequest{})
	wantCode(t, err, codes.PermissionDenied)
	// Operators may issue tokens too; viewers may not.
	if _, err := tokens.IssueAccessToken(f.operator(t), &v1.IssueAccessTokenRequest{Integration: name, Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH}); err != nil {
		t.Fatalf("operator: %v", err)
	}
	_, err = tokens.IssueAccessToken(f.viewer(t), &v1.IssueAccessTokenRequest{Integration: name, Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
	wantCode(t, err, codes.PermissionDenied)

	// Microsoft refuses: an integration whose application does not exist
	// in the tenant gets FailedPrecondition with mserr's class and remedy.
	bad := newIntegration(t, f.s, f.operator(t), f.tenant, "unknown~Secret.Value_1234567890abcdefghij")
	_, err = tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: bad.GetName(), Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "AADSTS") || strings.Contains(st.Message(), "unknown~Secret") {
		t.Fatalf("refusal: %v", st.Message())
	}

	// dzctl: the token alone on stdout (the cached one), and ack.
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": f.s.GRPCAddr, "DZCONNECT_API_KEY": consumer}
	app := cli.New(strings.NewReader(""), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	if code := app.Execute(context.Background(), []string{"token", name, "--api", "graph"}); code != 0 {
		t.Fatalf("dzctl token: exit %d\n%s", code, errOut.String())
	}
	if out.String() != first.GetAccessToken()+"\n" {
		t.Fatal("dzctl token did not print the token alone")
	}
	out.Reset()
	active := byState(f.credentials(t, name), "active")[0]
	if code := app.Execute(context.Background(), []string{"credential", "ack", name, "--consumer", "siem",
		"--credential", name + "/credentials/" + active.id.String()}); code != 0 || !strings.Contains(out.String(), "siem") {
		t.Fatalf("dzctl credential ack: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}

	// Counted and audited, aggregated: the server flushes its counters at
	// shutdown; one row per key, integration, API and hour, one audit
	// event each, and no token anywhere in Postgres.
	if err := f.s.Stop(); err != nil {
		t.Fatal(err)
	}
	rows, err := f.s.DB.Query(context.Background(), `select k.role, ti.issued, ti.fetched from token_issuances ti
		join api_keys k on k.id = ti.api_key_id where ti.api = 'graph' order by k.role`)
	if err != nil {
		t.Fatal(err)
	}
	var counts []string
	for rows.Next() {
		var role string
		var issued, fetched int64
		if err := rows.Scan(&role, &issued, &fetched); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, fmt.Sprintf("%s:%d/%d", role, issued, fetched))
	}
	rows.Close()
	if got, want := strings.Join(counts, " "), fmt.Sprintf("consumer:%d/1 operator:1/0", n+6); got != want {
		t.Fatalf("issuance counts %q, want %q", got, want)
	}
	var audits int
	if err := f.s.DB.QueryRow(context.Background(), `select count(*) from audit_events where method = $1 and resource = $2`,
		v1.TokenService_IssueAccessToken_FullMethodName, name).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != 2 {
		t.Fatalf("%d aggregated audit events, want 2 (one per key)", audits)
	}
	var leaked bool
	if err := f.s.DB.QueryRow(context.Background(), `select exists (select 1 from audit_events where request_id like '%' || $1 || '%')`,
		first.GetAccessToken()[:40]).Scan(&leaked); err != nil || leaked {
		t.Fatalf("token in the audit trail: %v %v", leaked, err)
	}
}
