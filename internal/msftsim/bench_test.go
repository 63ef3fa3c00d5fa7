package msftsim_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// benchEnv starts a fault-free simulator with one tenant and an app that
// may read users. Run with -cpu 1 for the one-core figure.
func benchEnv(b *testing.B, opts ...func(*msftsim.Options)) (*msftsim.Sim, msftsim.AppCreds, string) {
	b.Helper()
	o := msftsim.Options{Seed: 1}
	for _, f := range opts {
		f(&o)
	}
	sim, err := msftsim.Start(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	ti, _ := sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: "Bench", Users: 10})
	c, err := sim.Admin().CreateApp(ti.ID, msftsim.AppRequest{DisplayName: "bench", Roles: []string{"User.Read.All"}})
	if err != nil {
		b.Fatal(err)
	}
	return sim, c, ti.ID
}

func rawToken(b *testing.B, hc *http.Client, sim *msftsim.Sim, c msftsim.AppCreds) string {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
		"scope": {msftsim.ResourceGraph + "/.default"}}
	resp, err := hc.PostForm(sim.Endpoints().Authority+c.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	s := string(body)
	i := strings.Index(s, `"access_token":"`) + len(`"access_token":"`)
	return s[i : i+strings.IndexByte(s[i:], '"')]
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkGraphGetUser: GET /v1.0/users/{id} with a bearer token, over
// one keep-alive HTTPS connection.
func BenchmarkGraphGetUser(b *testing.B) {
	sim, c, tenant := benchEnv(b)
	hc := sim.HTTPClient()
	tok := rawToken(b, hc, sim, c)
	users, _ := sim.Admin().Tenant(tenant)
	_ = users
	u := sim.Endpoints().Graph + "/users?$top=1"
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(body)
	i := strings.Index(s, `"id":"`) + len(`"id":"`)
	userURL := sim.Endpoints().Graph + "/users/" + s[i:i+36]
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", userURL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	reportRate(b)
}

// BenchmarkGraphListUsersPage: one 100-user page of a 5,000-user tenant.
func BenchmarkGraphListUsersPage(b *testing.B) {
	sim, err := msftsim.Start(context.Background(), msftsim.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	ti, _ := sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: "Big", Users: 5000})
	c, _ := sim.Admin().CreateApp(ti.ID, msftsim.AppRequest{DisplayName: "bench", Roles: []string{"User.Read.All"}})
	hc := sim.HTTPClient()
	tok := rawToken(b, hc, sim, c)
	u := sim.Endpoints().Graph + "/users?$top=100&$skiptoken=bzoyNTAw" // offset 2500
	for b.Loop() {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	reportRate(b)
}

// BenchmarkToken: client-credentials token requests (each signs an RS256 JWT).
func BenchmarkToken(b *testing.B) {
	sim, c, _ := benchEnv(b)
	hc := sim.HTTPClient()
	for b.Loop() {
		rawToken(b, hc, sim, c)
	}
	reportRate(b)
}

// BenchmarkTokenReuse: the same with Options.TokenReuseWindow, which skips
// re-signing identical requests (load tests).
func BenchmarkTokenReuse(b *testing.B) {
	sim, c, _ := benchEnv(b, func(o *msftsim.Options) { o.TokenReuseWindow = time.Minute })
	hc := sim.HTTPClient()
	for b.Loop() {
		rawToken(b, hc, sim, c)
	}
	reportRate(b)
}

// BenchmarkGraphGetUserSDK: the same read through msgraph-sdk-go and azidentity.
func BenchmarkGraphGetUserSDK(b *testing.B) {
	sim, c, _ := benchEnv(b)
	t := &testing.T{}
	e := &env{t: t, sim: sim, ep: sim.Endpoints(), admin: sim.Admin(), tenant: c.TenantID}
	g := e.graph(e.credFor(c))
	ctx := context.Background()
	first, err := g.Users().Get(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	id := *first.GetValue()[0].GetId()
	for b.Loop() {
		if _, err := g.Users().ByUserId(id).Get(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}
