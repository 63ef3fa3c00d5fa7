package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// latencies is a set of call durations.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// timed runs n calls of fn over workers goroutines and returns each
// call's duration and the whole run's.
func timed(b *testing.B, n, workers int, fn func(ctx context.Context, i int) error, ctx context.Context) (latencies, time.Duration) {
	out := make(latencies, n)
	var mu sync.Mutex
	var ferr error
	start := time.Now()
	parallel(b, n, workers, func(i int) error {
		t0 := time.Now()
		err := fn(ctx, i)
		out[i] = time.Since(t0)
		if err != nil {
			mu.Lock()
			ferr = err
			mu.Unlock()
		}
		return err
	})
	if ferr != nil {
		b.Fatal(ferr)
	}
	return out, time.Since(start)
}

// BenchmarkIssueAccessToken measures IssueAccessToken (issue 9 item 7):
//
//   - warm: a consumer key asks for the Graph token of one integration
//     whose token is cached, DZCONNECT_BENCH_CALLS times (default 4000)
//     over 8 concurrent callers, against GetTenant (an operator key, the
//     same authentication and one Postgres read) in the same run,
//     alternating halves so both see the same machine; p50, p99 and
//     throughput side by side, and the ratios (target: IssueAccessToken's
//     p99 at most GetTenant's);
//   - cold: the first IssueAccessToken of each of 40 integrations
//     (a Vault read, a new azidentity credential and one token request to
//     msftsim), one at a time, against the bare token request for the same
//     applications (azidentity straight to msftsim, a new credential per
//     request, the same shared transport reuse), one at a time.
func BenchmarkIssueAccessToken(b *testing.B) {
	calls := 4000
	if v, err := strconv.Atoi(os.Getenv("DZCONNECT_BENCH_CALLS")); err == nil && v > 0 {
		calls = v
	}
	const workers, cold = 8, 40
	sim := stack.StartSim(b)
	s := stack.Start(b, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	org := s.NewOrg(b, "Token bench")
	c := s.Clients()
	info, err := sim.Admin().AddTenant(msftsim.TenantSpec{Users: 1})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := c.Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Bench"}})
	if err != nil {
		b.Fatal(err)
	}
	tenantName := tr.GetTenant().GetName()
	type app struct{ clientID, secret, integration string }
	newApps := func(n int) []app {
		out := make([]app, n)
		for i := range out {
			creds, err := sim.Admin().CreateApp(info.ID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(org.OperatorCtx, 30*time.Second)
			r, err := c.Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{Parent: tenantName,
				Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: creds.ClientID}},
				ClientSecret: creds.ClientSecret, RequestId: uuid.NewString()})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			out[i] = app{clientID: creds.ClientID, secret: creds.ClientSecret, integration: r.GetIntegration().GetName()}
		}
		return out
	}
	consumerKey := newConsumerKey(b, s, org.AdminCtx, org.Name)
	consumerCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+consumerKey)
	operatorCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+org.Operator)
	tokens := v1.NewTokenServiceClient(s.Conn)
	issue := func(ctx context.Context, in string) error {
		_, err := tokens.IssueAccessToken(ctx, &v1.IssueAccessTokenRequest{Integration: in, Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
		return err
	}
	warmIn := newApps(1)[0].integration
	if err := issue(consumerCtx, warmIn); err != nil { // fills the cache
		b.Fatal(err)
	}

	// The bare token request: azidentity to msftsim, as dzconnect's
	// microsoft.Client configures it (authority, CA, no instance discovery),
	// a new credential per request so nothing is cached.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.CAPool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}}
	ep := sim.Endpoints()
	bare := func(ctx context.Context, a app) error {
		cred, err := azidentity.NewClientSecretCredential(info.ID, a.clientID, a.secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.Authority}, Transport: hc},
			DisableInstanceDiscovery: true})
		if err != nil {
			return err
		}
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ep.Audiences["graph"] + "/.default"}})
		return err
	}

	b.ResetTimer()
	for range b.N {
		// Warm: alternate halves of GetTenant and IssueAccessToken.
		var getL, issueL latencies
		var getT, issueT time.Duration
		for range 2 {
			l, d := timed(b, calls/2, workers, func(ctx context.Context, _ int) error {
				_, err := c.Tenants.GetTenant(ctx, &v1.GetTenantRequest{Name: tenantName})
				return err
			}, operatorCtx)
			getL, getT = append(getL, l...), getT+d
			l, d = timed(b, calls/2, workers, func(ctx context.Context, _ int) error { return issue(ctx, warmIn) }, consumerCtx)
			issueL, issueT = append(issueL, l...), issueT+d
		}
		// Cold: each integration's first token, then the bare request for
		// the same applications, one at a time (new integrations for each
		// round, made off the clock).
		b.StopTimer()
		apps := newApps(cold)
		b.StartTimer()
		coldL, _ := timed(b, cold, 1, func(ctx context.Context, i int) error { return issue(ctx, apps[i].integration) }, consumerCtx)
		bareL, _ := timed(b, cold, 1, func(ctx context.Context, i int) error { return bare(ctx, apps[i]) }, context.Background())
		b.StopTimer()
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		b.ReportMetric(ms(issueL.pct(0.5)), "warm-p50-ms")
		b.ReportMetric(ms(issueL.pct(0.99)), "warm-p99-ms")
		b.ReportMetric(ms(coldL.pct(0.5)), "cold-p50-ms")
		fmt.Printf("warm (%d calls, %d callers)   IssueAccessToken p50 %.2f ms  p99 %.2f ms  %6.0f calls/s | GetTenant p50 %.2f ms  p99 %.2f ms  %6.0f calls/s | ratio p50 %.2f  p99 %.2f  throughput %.2f\n",
			calls, workers, ms(issueL.pct(0.5)), ms(issueL.pct(0.99)), float64(calls)/issueT.Seconds(),
			ms(getL.pct(0.5)), ms(getL.pct(0.99)), float64(calls)/getT.Seconds(),
			float64(issueL.pct(0.5))/float64(getL.pct(0.5)), float64(issueL.pct(0.99))/float64(getL.pct(0.99)),
			(float64(calls)/issueT.Seconds())/(float64(calls)/getT.Seconds()))
		fmt.Printf("cold (%d integrations, one at a time)  IssueAccessToken p50 %.2f ms  p99 %.2f ms | bare azidentity token request p50 %.2f ms  p99 %.2f ms | ratio p50 %.2f\n",
			cold, ms(coldL.pct(0.5)), ms(coldL.pct(0.99)), ms(bareL.pct(0.5)), ms(bareL.pct(0.99)),
			float64(coldL.pct(0.5))/float64(bareL.pct(0.5)))
		b.StartTimer()
	}
}
