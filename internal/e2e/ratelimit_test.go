package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/oidctest"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// limitRefusal checks err is a rate-limit refusal of scope and returns
// its retry delay and ErrorInfo metadata.
func limitRefusal(t *testing.T, err error, reason, scope string) (time.Duration, map[string]string) {
	t.Helper()
	st := wantCode(t, err, codes.ResourceExhausted)
	var (
		delay time.Duration
		md    map[string]string
	)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			delay = d.GetRetryDelay().AsDuration()
		case *errdetails.ErrorInfo:
			if d.GetReason() != reason {
				t.Fatalf("ErrorInfo reason %q, want %s", d.GetReason(), reason)
			}
			md = d.GetMetadata()
		}
	}
	if delay <= 0 || md == nil {
		t.Fatalf("refusal without RetryInfo or ErrorInfo: %v", st.Proto())
	}
	if md["scope"] != scope {
		t.Fatalf("refusal of scope %q, want %s (%q)", md["scope"], scope, st.Message())
	}
	return delay, md
}

// metricValue reads one sample (name with its labels, as exposed) from
// the internal listener's /metrics; -1 when absent.
func metricValue(t *testing.T, s *stack.Stack, sample string) float64 {
	t.Helper()
	body, err := httpGet(s.InternalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return -1
}

// TestRateLimits: per-key and per-organization token buckets, refused as
// RESOURCE_EXHAUSTED with RetryInfo and ErrorInfo (RATE_LIMITED, scope,
// limit) over gRPC and as 429 with Retry-After over REST; another
// organization and the service admin unaffected; a refused call writes
// nothing; refusals logged aggregated and counted.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	// One token per 100 s: nothing refills while the test runs.
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--rate-limit-key-rps=0.01", "--rate-limit-key-burst=3",
		"--rate-limit-org-rps=0.01", "--rate-limit-org-burst=5",
		"--rate-limit-hold=0"}}) // every refusal answered at once (holds: TestRateLimitHold)
	c := s.Clients()
	a, b := s.NewOrg(t, "Flooder"), s.NewOrg(t, "Bystander")
	get := func(ctx context.Context, org stack.Org) error {
		_, err := c.Orgs.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: org.Name})
		return err
	}

	// A's viewer key: its burst of 3, then refused by its own bucket.
	for i := range 3 {
		if err := get(a.ViewerCtx, a); err != nil {
			t.Fatalf("call %d within the key's burst: %v", i+1, err)
		}
	}
	delay, md := limitRefusal(t, get(a.ViewerCtx, a), "RATE_LIMITED", "key")
	if delay < 90*time.Second || delay > 100*time.Second || md["limit"] != "0.01" || md["burst"] != "3" {
		t.Fatalf("key refusal: retry delay %v, metadata %v; want about 100s, limit 0.01, burst 3", delay, md)
	}
	// A's operator key has its own bucket, but shares the organization's:
	// 2 more calls make the organization's 5, the next is refused by it,
	// and a refused create writes nothing.
	for i := range 2 {
		if err := get(a.OperatorCtx, a); err != nil {
			t.Fatalf("second key, call %d: %v", i+1, err)
		}
	}
	tenantsBefore := countRows(t, s, "tenants")
	_, err := c.Tenants.CreateTenant(a.OperatorCtx, &v1.CreateTenantRequest{Parent: a.Name, Tenant: &v1.Tenant{
		EntraTenantId: "11111111-2222-3333-4444-555555555555", Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "refused"}})
	if _, md := limitRefusal(t, err, "RATE_LIMITED", "organization"); md["limit"] != "0.01" || md["burst"] != "5" {
		t.Fatalf("organization refusal metadata %v", md)
	}
	if n := countRows(t, s, "tenants"); n != tenantsBefore {
		t.Fatalf("a refused CreateTenant wrote a tenant (%d rows, were %d)", n, tenantsBefore)
	}

	// B is unaffected; the service admin is never limited.
	for i := range 3 {
		if err := get(b.ViewerCtx, b); err != nil {
			t.Fatalf("organization B, call %d, while A is limited: %v", i+1, err)
		}
	}
	for i := range 20 {
		if err := get(s.Admin(t), a); err != nil {
			t.Fatalf("service admin, call %d: %v", i+1, err)
		}
	}

	// REST: 429 with Retry-After in whole seconds, the status as JSON.
	code, body, hdr := rest{t, s.HTTPURL, a.Admin}.do("GET", "/v1/"+a.Name, nil)
	ra, convErr := strconv.Atoi(hdr.Get("Retry-After"))
	if code != 429 || convErr != nil || ra < 90 || ra > 100 || body["code"] != float64(codes.ResourceExhausted) {
		t.Fatalf("REST refusal: %d, Retry-After %q, body %v; want 429, about 100, code 8", code, hdr.Get("Retry-After"), body)
	}
	if !strings.Contains(fmt.Sprint(body["details"]), "RATE_LIMITED") {
		t.Fatalf("REST refusal without its ErrorInfo: %v", body)
	}

	// Counted by scope; logged aggregated (a line per bucket per interval,
	// not one per call: no "rpc" line for the refused calls).
	if k, o := metricValue(t, s, `dzconnect_rate_limited_total{scope="key"}`), metricValue(t, s, `dzconnect_rate_limited_total{scope="organization"}`); k != 1 || o != 2 {
		t.Fatalf("dzconnect_rate_limited_total: key %v, organization %v; want 1 and 2", k, o)
	}
	logs := s.Logs.String()
	if n := strings.Count(logs, `"msg":"rate limited"`); n != 2 {
		t.Fatalf("%d rate-limited log lines, want 2 (one per bucket):\n%s", n, logs)
	}
	if strings.Contains(logs, `"code":"ResourceExhausted"`) {
		t.Fatal("a refused call was logged as an rpc line")
	}

	// Burst of refusals: still one line per bucket per interval.
	for range 50 {
		_ = get(a.ViewerCtx, a)
	}
	if n := strings.Count(s.Logs.String(), `"msg":"rate limited"`); n != 2 {
		t.Fatalf("50 more refusals wrote %d more log lines, want none", n-2)
	}
}

// TestRateLimitWorkloadIdentities: OIDC subjects have a bucket each
// (before, principals without an API key would all have shared one), and
// a replica's buckets stay bounded however many callers appear.
func TestRateLimitWorkloadIdentities(t *testing.T) {
	t.Parallel()
	is := oidctest.Start(t)
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--oidc-issuer", is.URL, "--oidc-audience", oidcAudience, "--oidc-ca-file", is.CAFile,
		"--rate-limit-key-rps=0.01", "--rate-limit-key-burst=2", "--rate-limit-org-rps=0", "--rate-limit-max-buckets=20"}})
	org := s.NewOrg(t, "Workloads")
	orgID := strings.TrimPrefix(org.Name, "organizations/")
	c := s.Clients()
	call := func(sub string) error {
		tok := is.Token(t, is.Claims(sub, oidcAudience, 5*time.Minute, map[string]any{"dzconnect_org": orgID, "dzconnect_role": "viewer"}))
		_, err := c.Orgs.GetOrganization(bearerCtx(t, tok), &v1.GetOrganizationRequest{Name: org.Name})
		return err
	}
	for i := range 2 {
		if err := call("svc-a"); err != nil {
			t.Fatalf("svc-a call %d: %v", i+1, err)
		}
	}
	limitRefusal(t, call("svc-a"), "RATE_LIMITED", "key")
	for i := range 2 {
		if err := call("svc-b"); err != nil {
			t.Fatalf("svc-b (its own bucket) call %d while svc-a is limited: %v", i+1, err)
		}
	}
	// 60 more identities: the replica keeps at most 20 buckets.
	for i := range 60 {
		if err := call(fmt.Sprintf("svc-%d", i)); err != nil {
			t.Fatalf("svc-%d: %v", i, err)
		}
	}
	if n := metricValue(t, s, `dzconnect_rate_limit_buckets{scope="key"}`); n < 1 || n > 20 {
		t.Fatalf("dzconnect_rate_limit_buckets{scope=key} = %v after 62 callers, want at most 20", n)
	}
}
