package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// BenchmarkSweep measures a fleet sweep: DZCONNECT_BENCH_INTEGRATIONS
// (default 10000) Defender integrations over 100 customer tenants in
// msftsim, checked by the real job queue and verification service. In the
// same run, a bare loop issues the same HTTP calls per integration with the
// same concurrency and nothing else: the secret's read from Vault, a token,
// then the four Graph probes. It reports both rates and their ratio (and,
// for reference, the rate of the Microsoft calls alone).
func BenchmarkSweep(b *testing.B) {
	total := 10000
	if v, err := strconv.Atoi(os.Getenv("DZCONNECT_BENCH_INTEGRATIONS")); err == nil && v > 0 {
		total = v
	}
	const tenants, concurrency = 100, 50
	sim := stack.StartSim(b)
	setup := stack.Start(b, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	org := setup.NewOrg(b, "Bench")
	c := setup.Clients()

	type app struct{ tenant, clientID, secret, vaultPath string }
	apps := make([]app, 0, total)
	tenantNames := make([]string, tenants)
	simTenants := make([]string, tenants)
	for i := range tenants {
		info, err := sim.Admin().AddTenant(msftsim.TenantSpec{Users: 1, Alerts: 1, Incidents: 1, SignIns: 1})
		if err != nil {
			b.Fatal(err)
		}
		simTenants[i] = info.ID
		resp, err := c.Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
			EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer " + strconv.Itoa(i)}})
		if err != nil {
			b.Fatal(err)
		}
		tenantNames[i] = resp.GetTenant().GetName()
	}
	for i := range total {
		creds, err := sim.Admin().CreateApp(simTenants[i%tenants], msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
		if err != nil {
			b.Fatal(err)
		}
		apps = append(apps, app{tenant: simTenants[i%tenants], clientID: creds.ClientID, secret: creds.ClientSecret})
	}
	start := time.Now()
	parallel(b, total, 8, func(i int) error {
		resp, err := c.Integrations.CreateIntegration(org.OperatorCtx, &v1.CreateIntegrationRequest{
			Parent: tenantNames[i%tenants],
			Integration: &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: apps[i].clientID},
				Credential: &v1.Credential{ExpireTime: timestamppb.New(time.Now().Add(300 * 24 * time.Hour))}},
			ClientSecret: apps[i].secret, RequestId: uuid.NewString(),
		})
		if err == nil {
			apps[i].vaultPath = "/v1/" + setup.Vault.Mount + "/data/dzconnect/" + activeSecretPath(resp.GetIntegration())
		}
		return err
	})
	b.Logf("setup: %d integrations created through the API in %v", total, time.Since(start).Round(time.Millisecond))

	b.ResetTimer()
	for range b.N {
		// The sweep: a replica with the job queue on, sweeping at start.
		if _, err := setup.DB.Exec(context.Background(), `delete from checks`); err != nil {
			b.Fatal(err)
		}
		if _, err := setup.DB.Exec(context.Background(), `update integrations set last_check_time = null`); err != nil {
			b.Fatal(err)
		}
		if _, err := setup.DB.Exec(context.Background(), `delete from river_job`); err != nil {
			b.Fatal(err)
		}
		if path := os.Getenv("DZCONNECT_BENCH_PROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		// A sweep interval of 2 minutes makes the leader look for due
		// integrations every 10 s.
		stack.Start(b, stack.Options{DatabaseURL: setup.DatabaseURL, Vault: setup.Vault, ExtraArgs: append(stack.SimArgs(sim),
			"--jobs=true", "--sweep-interval=2m", "--sweep-jitter=0s", "--check-concurrency="+strconv.Itoa(concurrency),
			"--check-per-tenant=4", "--settle-window=1ns", "--database-max-conns=40", "--log-level=warn")})
		// First sweep: every integration goes from unverified to healthy
		// (state changes, notifications). Then the steady state: the same
		// fleet checked again, outcomes unchanged, as every later sweep.
		waitSweep := func(since time.Time) (time.Duration, int) {
			var first, last time.Time
			var n, healthy int
			deadline := time.Now().Add(30 * time.Minute)
			for n < total {
				if time.Now().After(deadline) {
					b.Fatalf("sweep incomplete after 30 minutes: %d of %d", n, total)
				}
				time.Sleep(250 * time.Millisecond) // polling progress of a long run, not synchronizing
				if err := setup.DB.QueryRow(context.Background(), `select count(*), count(*) filter (where outcome = 'healthy'),
					coalesce(min(start_time), now()), coalesce(max(end_time), now())
					from checks where trigger = 'schedule' and start_time >= $1`, since).Scan(&n, &healthy, &first, &last); err != nil {
					b.Fatal(err)
				}
			}
			return last.Sub(first), healthy
		}
		firstSweep, firstHealthy := waitSweep(time.Time{})
		again := time.Now()
		if _, err := setup.DB.Exec(context.Background(), `update integrations set last_check_time = null`); err != nil {
			b.Fatal(err)
		}
		sweep, healthy := waitSweep(again)
		fmt.Printf("first sweep of %d integrations (all change state): %v, %.0f checks/s (%d healthy)\n",
			total, firstSweep.Round(time.Millisecond), float64(total)/firstSweep.Seconds(), firstHealthy)
		pprof.StopCPUProfile()
		if os.Getenv("DZCONNECT_BENCH_STEPS") != "" {
			rows, err := setup.DB.Query(context.Background(), `select s->>'name', avg((s->>'duration_ns')::bigint)/1e6
				from checks, jsonb_array_elements(steps) s group by 1 union all
				select 'whole check', avg(extract(epoch from end_time - start_time))*1e3 from checks`)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var name string
				var ms float64
				_ = rows.Scan(&name, &ms)
				fmt.Printf("  %-40s %.1f ms\n", name, ms)
			}
			rows.Close()
		}
		if os.Getenv("DZCONNECT_BENCH_ROUTES") != "" {
			for _, rc := range sim.Admin().Counters() {
				fmt.Printf("  %-50s %d\n", rc.Route, rc.Requests)
			}
		}
		sweepRate := float64(total) / sweep.Seconds()

		// The bare loop: the same HTTP calls, nothing else.
		ep := sim.Endpoints()
		hc := sim.HTTPClient()
		vc := &http.Client{}
		var bareErrors atomic.Int64
		bareRun := func(withVault bool) time.Duration {
			start := time.Now()
			parallel(b, total, concurrency, func(i int) error {
				secret := apps[i].secret
				if withVault {
					var err error
					if secret, err = vaultRead(vc, setup.Vault.Addr, setup.Vault.Token, apps[i].vaultPath); err != nil {
						bareErrors.Add(1)
						return nil //nolint:nilerr // counted, like a failed check, so the loop keeps its pace
					}
				}
				if err := bareCheck(hc, ep, apps[i].tenant, apps[i].clientID, secret); err != nil {
					bareErrors.Add(1)
				}
				return nil
			})
			return time.Since(start)
		}
		bare := bareRun(true)
		msOnly := bareRun(false)
		bareRate := float64(total) / bare.Seconds()
		msRate := float64(total) / msOnly.Seconds()
		b.ReportMetric(sweepRate, "checks/s")
		b.ReportMetric(bareRate, "bare-checks/s")
		b.ReportMetric(sweepRate/bareRate, "ratio")
		fmt.Printf("steady-state sweep of %d integrations: %v, %.0f checks/s (%d healthy)\n", total, sweep.Round(time.Millisecond), sweepRate, healthy)
		fmt.Printf("bare loop (Vault read + token + 4 Graph GETs): %v, %.0f checks/s (%d errors)\n", bare.Round(time.Millisecond), bareRate, bareErrors.Load())
		fmt.Printf("ratio steady-state sweep/bare: %.2f (target >= 0.5); first sweep/bare: %.2f\n", sweepRate/bareRate,
			float64(total)/firstSweep.Seconds()/bareRate)
		fmt.Printf("for reference, the Microsoft calls alone: %.0f checks/s, ratio %.2f\n", msRate, sweepRate/msRate)
		if healthy != total {
			b.Fatalf("%d of %d checks healthy", healthy, total)
		}
	}
}

// vaultRead reads a KV v2 secret with net/http, as the check's first call.
func vaultRead(hc *http.Client, addr, token, path string) (string, error) {
	req, _ := http.NewRequest("GET", addr+path, nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Data map[string]string `json:"data"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("vault: %d %v", resp.StatusCode, err)
	}
	return out.Data.Data["client_secret"], nil
}

// bareCheck issues one check's Microsoft calls with net/http.
func bareCheck(hc *http.Client, ep msftsim.Endpoints, tenant, clientID, secret string) error {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {msftsim.ResourceGraph + "/.default"}}
	resp, err := hc.PostForm(strings.TrimSuffix(ep.Authority, "/")+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("token: %d", resp.StatusCode)
	}
	tok := string(body)
	i := strings.Index(tok, `"access_token":"`)
	if i < 0 {
		return fmt.Errorf("no token")
	}
	tok = tok[i+16:]
	tok = tok[:strings.IndexByte(tok, '"')]
	for _, p := range []string{"/security/alerts_v2?$top=1", "/security/incidents?$top=1", "/auditLogs/signIns?$top=1", "/users?$top=1"} {
		req, _ := http.NewRequest("GET", ep.Graph+p, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	return nil
}

// parallel runs fn for 0..n-1 on workers goroutines; the first error fails b.
func parallel(b *testing.B, n, workers int, fn func(i int) error) {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		once sync.Once
		ferr error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { ferr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if ferr != nil {
		b.Fatal(ferr)
	}
}
