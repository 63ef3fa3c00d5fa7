package microsoft_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// BenchmarkCheckCalls compares, against one msftsim with 20 tenants of 20
// applications, a check's Microsoft calls (a token, then the four Graph
// probes of a Defender integration) made three ways with 50 at once: raw
// net/http (the sweep benchmark's bare loop), the adapter with the probes
// one after the other, and the adapter as verify runs them (the four
// probes started at once, the per-caller limit sending one at a time). It
// isolates the adapter's latency and CPU from Postgres, Vault and River.
func BenchmarkCheckCalls(b *testing.B) {
	dir := b.TempDir()
	sim, err := msftsim.Start(context.Background(), msftsim.Options{Seed: 7, StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	clouds, err := microsoft.LoadEndpointsFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		b.Fatal(err)
	}
	client, err := microsoft.New(microsoft.Config{Clouds: clouds})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.CloseIdleConnections)
	type app struct{ tenant, clientID, secret string }
	var apps []app
	roles := []string{"AuditLog.Read.All", "SecurityAlert.Read.All", "SecurityIncident.Read.All", "User.Read.All"}
	for range 20 {
		ti, err := sim.Admin().AddTenant(msftsim.TenantSpec{Users: 1, Alerts: 1, Incidents: 1, SignIns: 1})
		if err != nil {
			b.Fatal(err)
		}
		for range 20 {
			c, err := sim.Admin().CreateApp(ti.ID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles})
			if err != nil {
				b.Fatal(err)
			}
			apps = append(apps, app{ti.ID, c.ClientID, c.ClientSecret})
		}
	}
	ep := sim.Endpoints()
	hc := sim.HTTPClient()
	probes := []microsoft.Probe{microsoft.ProbeGraphAlerts, microsoft.ProbeGraphIncidents, microsoft.ProbeGraphSignIns, microsoft.ProbeGraphUsers}
	ways := []struct {
		name string
		fn   func(ctx context.Context, a app) error
	}{
		{"bare", func(_ context.Context, a app) error { return rawCheck(hc, ep, a.tenant, a.clientID, a.secret) }},
		{"adapter-sequential", func(ctx context.Context, a app) error {
			s, err := client.NewSession(microsoft.Credentials{TenantID: a.tenant, ClientID: a.clientID, Secret: a.secret})
			if err != nil {
				return err
			}
			if _, err := s.Token(ctx, microsoft.APIGraph); err != nil {
				return err
			}
			for _, p := range probes {
				if err := s.Probe(ctx, p, nil); err != nil {
					return err
				}
			}
			return nil
		}},
		{"adapter-as-verify", func(ctx context.Context, a app) error {
			s, err := client.NewSession(microsoft.Credentials{TenantID: a.tenant, ClientID: a.clientID, Secret: a.secret})
			if err != nil {
				return err
			}
			if _, err := s.Token(ctx, microsoft.APIGraph); err != nil {
				return err
			}
			var wg sync.WaitGroup
			errs := make([]error, len(probes))
			for i, p := range probes {
				wg.Go(func() { errs[i] = s.Probe(ctx, p, nil) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	const concurrency, checks = 50, 2000
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			for range b.N {
				var next atomic.Int64
				var failed atomic.Int64
				var busy atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range concurrency {
					wg.Go(func() {
						for {
							i := int(next.Add(1)) - 1
							if i >= checks {
								return
							}
							t := time.Now()
							if err := w.fn(context.Background(), apps[i%len(apps)]); err != nil {
								if failed.Add(1) == 1 {
									b.Log(err)
								}
							}
							busy.Add(int64(time.Since(t)))
						}
					})
				}
				wg.Wait()
				d := time.Since(start)
				b.ReportMetric(float64(checks)/d.Seconds(), "checks/s")
				b.ReportMetric(float64(busy.Load())/float64(checks)/1e6, "ms/check")
				if failed.Load() > 0 {
					b.Fatalf("%d checks failed", failed.Load())
				}
			}
		})
	}
}

// rawCheck: a token and the four probes with net/http.
func rawCheck(hc *http.Client, ep msftsim.Endpoints, tenant, clientID, secret string) error {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {msftsim.ResourceGraph + "/.default"}}
	resp, err := hc.PostForm(strings.TrimSuffix(ep.Authority, "/")+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	tok := string(body)
	i := strings.Index(tok, `"access_token":"`)
	if resp.StatusCode != 200 || i < 0 {
		return fmt.Errorf("token: %d", resp.StatusCode)
	}
	tok = tok[i+16:]
	tok = tok[:strings.IndexByte(tok, '"')]
	for _, p := range []string{"/security/alerts_v2?$top=1", "/security/incidents?$top=1", "/auditLogs/signIns?$top=1", "/users?$top=1"} {
		req, _ := http.NewRequest(http.MethodGet, ep.Graph+p, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	return nil
}
