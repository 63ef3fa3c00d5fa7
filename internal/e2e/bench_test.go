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
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// BenchmarkSweep measures a fleet sweep: DZCONNECT_BENCH_INTEGRATIONS
// (default 10000) Defender integrations over 100 customer tenants in
// msftsim, checked by the real job queue and verification service: the
// sweep enqueues one check batch per tenant, and a replica runs
// concurrency/perTenant batches at once, each checking perTenant
// integrations at a time, so that concurrency checks run at once. In the
// same run, a bare loop issues the same HTTP calls per integration with the
// same concurrency and nothing else: the secret's read from Vault, a token,
// then the four Graph probes; it runs before, between and after the sweeps,
// and each sweep's ratio is against the faster of the two bare loops next
// to it (the ratios against the fastest of all three are printed too).
// After the steady state, every integration changes state again on the
// now warm replica (warm-first-ratio: the first sweep's writes without the
// replica's start). It reports the first sweep's rate (every
// integration changes state), the steady-state sweep's (outcomes
// unchanged, as every later sweep), the bare loop's, and both ratios (and,
// for reference, the rate of the Microsoft calls alone).
//
// A sweep is timed from the insertion of its sweep job to the end of its
// last check (recorded by the checks themselves), so the job queue's own
// latency counts. DZCONNECT_BENCH_PROFILE=file writes a CPU profile of each
// phase (file.first, file.steady, file.warm, file.bare), DZCONNECT_BENCH_STEPS prints
// the average duration of each step, DZCONNECT_BENCH_ROUTES the simulator's
// request counts.
func BenchmarkSweep(b *testing.B) {
	total := 10000
	if v, err := strconv.Atoi(os.Getenv("DZCONNECT_BENCH_INTEGRATIONS")); err == nil && v > 0 {
		total = v
	}
	const tenants, concurrency, perTenant = 100, 50, 2
	// Sweeps run when the benchmark inserts a sweep job: the periodic one
	// (every replica's leader schedules it) comes every 5 minutes with this
	// interval, and spreads nothing.
	sweepArgs := []string{"--sweep-interval=6h", "--sweep-jitter=0s"}
	sim := stack.StartSim(b)
	setup := stack.Start(b, stack.Options{ExtraArgs: append(stack.SimArgs(sim), sweepArgs...)})
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
	opMD, _ := metadata.FromOutgoingContext(org.OperatorCtx)
	start := time.Now()
	parallel(b, total, 8, func(i int) error {
		// A context per call: org.OperatorCtx lasts 30 s, less than the
		// setup of a large fleet.
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), opMD), 30*time.Second)
		defer cancel()
		resp, err := c.Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{
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
	ctx := context.Background()
	inserter, err := river.NewClient(riverpgxv5.New(setup.DB), &river.Config{})
	if err != nil {
		b.Fatal(err)
	}
	exec := func(sql string) {
		if _, err := setup.DB.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}

	// Statistics, as autovacuum keeps them on a running service: the
	// fleet was created seconds ago, and without them the planner takes
	// every table for empty (e.g. a batch's page would scan all of the
	// organization's credentials for each integration).
	exec(`analyze`)

	b.ResetTimer()
	for range b.N {
		exec(`delete from checks`)
		exec(`update integrations set last_check_time = null`)
		exec(`delete from river_job where kind in ('sweep', 'check_tenant_batch')`)
		exec(`vacuum analyze integrations, checks`)
		// The bare loop: the same HTTP calls, nothing else. It runs
		// before the sweeping replica starts (whose leader sweeps on
		// start) and again after the sweeps.
		ep := sim.Endpoints()
		hc := sim.HTTPClient()
		// Vault connections kept as dzconnect's Vault client keeps them
		// (internal/vault: 64 idle per host).
		vc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		var bareErrors atomic.Int64
		var vaultTime, msTime atomic.Int64 // summed over the bare loop's checks
		bareRun := func(withVault bool) time.Duration {
			start := time.Now()
			vaultTime.Store(0)
			msTime.Store(0)
			parallel(b, total, concurrency, func(i int) error {
				secret := apps[i].secret
				t0 := time.Now()
				if withVault {
					var err error
					if secret, err = vaultRead(vc, setup.Vault.Addr, setup.Vault.Token, apps[i].vaultPath); err != nil {
						bareErrors.Add(1)
						return nil //nolint:nilerr // counted, like a failed check, so the loop keeps its pace
					}
				}
				t1 := time.Now()
				if err := bareCheck(hc, ep, apps[i].tenant, apps[i].clientID, secret); err != nil {
					bareErrors.Add(1)
				}
				vaultTime.Add(int64(t1.Sub(t0)))
				msTime.Add(int64(time.Since(t1)))
				return nil
			})
			if os.Getenv("DZCONNECT_BENCH_STEPS") != "" {
				fmt.Printf("  bare loop (Vault %v): Vault read %.1f ms, token + 4 probes %.1f ms on average\n", withVault,
					float64(vaultTime.Load())/float64(total)/1e6, float64(msTime.Load())/float64(total)/1e6)
			}
			return time.Since(start)
		}
		cpu := newCPUMeter(ctx, setup.DB, setup.Vault.Addr)
		cb0 := cpu.sample()
		bare0 := bareRun(true)
		cb1 := cpu.sample()

		// The sweeping replica: checks on, concurrency checks at once.
		stack.Start(b, stack.Options{DatabaseURL: setup.DatabaseURL, Vault: setup.Vault, ExtraArgs: append(append(stack.SimArgs(sim),
			sweepArgs...), "--jobs=true", "--check-concurrency="+strconv.Itoa(concurrency/perTenant),
			"--check-per-tenant="+strconv.Itoa(perTenant), "--settle-window=1ns", "--database-max-conns=40",
			"--database-min-conns=10", "--log-level=warn")}) // min-conns: the default, which the stack sets lower for tests
		// profile starts a CPU profile of the next phase into the file
		// DZCONNECT_BENCH_PROFILE names, with suffix (a phase each, so
		// that each divides by its own checks).
		profile := func(suffix string) {
			path := os.Getenv("DZCONNECT_BENCH_PROFILE")
			if path == "" {
				return
			}
			pprof.StopCPUProfile()
			f, err := os.Create(path + suffix)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		// sweep inserts a sweep job and waits until every integration has
		// a scheduled check that started after it and every batch job has
		// finished, by counting rows (the poll interval does not enter the
		// figure: the end is the last check's or batch's recorded end).
		var since time.Time
		sweep := func() (time.Duration, int) {
			since = time.Now()
			if _, err := inserter.Insert(ctx, jobs.SweepArgs{}, nil); err != nil {
				b.Fatal(err)
			}
			var last time.Time
			var n, healthy, unfinished int
			deadline := time.After(30 * time.Minute)
			// Every 100 ms, the unfinished batches only (below): the end
			// is read from the recorded times, so the polling does not
			// enter the rate; but the CPU meter's window ends when the
			// poll sees the end, and whatever idles meanwhile (up to a
			// second with a poll once a second) counted as the sweep's
			// CPU per check.
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for n < total || unfinished > 0 {
				select {
				case <-deadline:
					b.Fatalf("sweep incomplete after 30 minutes: %d of %d checked, %d batches unfinished", n, total, unfinished)
				case <-tick.C: // polling the outcome of a long run, not waiting for it to happen
				}
				// While batches run, only they are counted (a few hundred
				// river_job rows): the benchmark's own polling is load on
				// the Postgres the sweep uses, inside the measured window
				// (counting checks scanned up to 2 × the fleet's rows each
				// second; session 8 measured 4-7 ms of Postgres time per
				// poll at 2,000).
				if err := setup.DB.QueryRow(ctx, `select count(*) from river_job where kind = 'check_tenant_batch' and finalized_at is null`).
					Scan(&unfinished); err != nil {
					b.Fatal(err)
				}
				if unfinished > 0 {
					continue
				}
				if err := setup.DB.QueryRow(ctx, `select count(*), count(*) filter (where outcome = 'healthy'),
					(select count(*) from river_job where kind = 'check_tenant_batch' and finalized_at is null),
					coalesce(greatest(max(end_time), (select max(finalized_at) from river_job where kind = 'check_tenant_batch')), now())
					from checks where trigger = 'schedule' and start_time >= $1`,
					since).Scan(&n, &healthy, &unfinished, &last); err != nil {
					b.Fatal(err)
				}
			}
			return last.Sub(since), healthy
		}
		// First sweep: every integration goes from unverified to healthy
		// (state changes, notifications). Then the steady state: the same
		// fleet checked again, outcomes unchanged, as every later sweep.
		// inFlight prints how many checks ran at once on average over a
		// sweep, and when its last 5% of checks started.
		inFlight := func(name string, d time.Duration) {
			if os.Getenv("DZCONNECT_BENCH_STEPS") == "" {
				return
			}
			var busy, tail, lead, mid, trail float64
			if err := setup.DB.QueryRow(ctx, `select sum(extract(epoch from end_time - start_time)),
				extract(epoch from max(end_time) - percentile_disc(0.95) within group (order by start_time)),
				extract(epoch from min(start_time) - $1), extract(epoch from max(end_time) - min(start_time))
				from checks where trigger = 'schedule' and start_time >= $1`, since).Scan(&busy, &tail, &lead, &mid); err != nil {
				b.Fatal(err)
			}
			trail = d.Seconds() - lead - mid
			fmt.Printf("  %s: %.1f checks in flight on average (%.1f between the first check's start and the last one's end); "+
				"the last 5%% took %.1fs; %.2fs before the first check started, %.2fs after the last one ended\n",
				name, busy/d.Seconds(), busy/mid, tail, lead, trail)
			// Checks in flight over the sweep, in twentieths of it: where
			// the replica's check slots stood empty.
			rows, err := setup.DB.Query(ctx, `with span as (select min(start_time) s, max(end_time) e from checks
				where trigger = 'schedule' and start_time >= $1),
				b as (select g, s + (e - s) * g / 20 b0, s + (e - s) * (g + 1) / 20 b1 from span, generate_series(0, 19) g)
				select g, coalesce(sum(extract(epoch from least(end_time, b1) - greatest(start_time, b0)))
					filter (where start_time < b1 and end_time > b0), 0) / extract(epoch from b1 - b0)
				from b, checks where trigger = 'schedule' and start_time >= $1 group by g, b0, b1 order by g`, since)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("  %s: checks in flight by twentieth:", name)
			for rows.Next() {
				var g int
				var f float64
				if err := rows.Scan(&g, &f); err != nil {
					b.Fatal(err)
				}
				fmt.Printf(" %.0f", f)
			}
			fmt.Println()
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			// The sweep's start, step by step: the sweep job taken, the
			// batches inserted, the first batch taken.
			var sweepTaken, batchesIn, batchTaken float64
			if err := setup.DB.QueryRow(ctx, `select
				coalesce(extract(epoch from min(attempted_at) filter (where kind = 'sweep') - $1), -1),
				coalesce(extract(epoch from min(created_at) filter (where kind = 'check_tenant_batch') - $1), -1),
				coalesce(extract(epoch from min(attempted_at) filter (where kind = 'check_tenant_batch') - $1), -1)
				from river_job where kind in ('sweep', 'check_tenant_batch')`, since).Scan(&sweepTaken, &batchesIn, &batchTaken); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("  %s's start: sweep job taken after %.3fs, batches inserted after %.3fs, the first taken after %.3fs\n",
				name, sweepTaken, batchesIn, batchTaken)
		}
		// DZCONNECT_BENCH_PGSS=1: the statements of each sweep, from
		// pg_stat_statements (the Postgres server must load it).
		pgss := os.Getenv("DZCONNECT_BENCH_PGSS") != ""
		statements := func(name string) {
			if !pgss {
				return
			}
			// Planning time is there when the server sets
			// pg_stat_statements.track_planning (0 otherwise).
			rows, err := setup.DB.Query(ctx, `select calls, total_exec_time, total_plan_time, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 100)
				from pg_stat_statements order by total_exec_time + total_plan_time desc limit 25`)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("  %s: statements by execution and planning time (calls, execution ms, planning ms, rows)\n", name)
			for rows.Next() {
				var calls, nrows int64
				var ms, plan float64
				var q string
				_ = rows.Scan(&calls, &ms, &plan, &nrows, &q)
				fmt.Printf("    %6d %8.1f %8.1f %7d  %s\n", calls, ms, plan, nrows, q)
			}
			rows.Close()
		}
		// phase runs a sweep as a phase of its own: its statements counted
		// from zero, a CPU profile of the sweep alone (file+suffix), CPU
		// samples before and after it; then its statements and its checks
		// in flight printed.
		phase := func(name, suffix string) (d time.Duration, healthy int, c0, c1 cpuSample) {
			if pgss {
				exec(`select pg_stat_statements_reset()`)
			}
			profile(suffix)
			c0 = cpu.sample()
			d, healthy = sweep()
			c1 = cpu.sample()
			pprof.StopCPUProfile()
			statements(name)
			inFlight(name, d)
			return d, healthy, c0, c1
		}
		if pgss {
			exec(`create extension if not exists pg_stat_statements`)
		}
		first, firstHealthy, c0, c1 := phase("first sweep", ".first")
		// dueAgain makes every integration due for the next sweep (and,
		// with states, unverified again). The reset's dead rows are the
		// benchmark's, not the sweep's: vacuumed before it (a sweep six
		// hours after the last one finds the table vacuumed), so that
		// autovacuum does not clean them up during the sweep and on its
		// account.
		dueAgain := func(states bool) {
			exec(`delete from river_job where kind in ('sweep', 'check_tenant_batch')`)
			if states {
				exec(`update integrations set last_check_time = null, state = 'unverified'`)
			} else {
				exec(`update integrations set last_check_time = null`)
			}
			exec(`vacuum analyze integrations, checks`)
		}
		dueAgain(false)
		// The bare loop again, between the sweeps (since session 9): the
		// machine's speed drifts by ±10% and more within minutes (the
		// simulator's token signatures, a fixed amount of work per check,
		// took 10.3, 11.5 and 10.6 s per 10,000 in three phases of one
		// run), so each sweep is compared with the bare loops next to it.
		cm0 := cpu.sample()
		bareMid := bareRun(true)
		cm1 := cpu.sample()
		steady, healthy, c2, c3 := phase("steady-state sweep", ".steady")
		// Every state changes again, on the replica that has swept twice
		// (since session 9): the first sweep above also pays for a replica
		// started right before it (its pool's new Postgres backends plan
		// their first statements with cold caches: about 0.2 ms of
		// Postgres CPU per check at 2,000), which this one does not.
		dueAgain(true)
		warm, warmHealthy, cw0, cw1 := phase("state changes on a warm replica", ".warm")
		if os.Getenv("DZCONNECT_BENCH_STEPS") != "" {
			rows, err := setup.DB.Query(ctx, `select s->>'name', avg((s->>'duration_ns')::bigint)/1e6
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

		profile(".bare") // the bare loop's own, to compare per check
		c4 := cpu.sample()
		bare1 := bareRun(true)
		c5 := cpu.sample()
		pprof.StopCPUProfile()
		msOnly := bareRun(false)
		// The bare loop's CPU per check: its three runs together.
		bareCPU := func(ss ...cpuSample) string {
			var sum cpuSample
			for i := 0; i+1 < len(ss); i += 2 {
				a, b := ss[i], ss[i+1]
				sum.self += b.self - a.self
				sum.postgres += b.postgres - a.postgres
				sum.vault += b.vault - a.vault
			}
			return perCheck(cpuSample{}, sum, len(ss)/2*total)
		}
		fmt.Printf("first sweep: %s\nsteady-state sweep: %s\nstate changes on a warm replica: %s\nbare loop: %s\n",
			perCheck(c0, c1, total), perCheck(c2, c3, total), perCheck(cw0, cw1, total), bareCPU(cb0, cb1, cm0, cm1, c4, c5))
		fmt.Printf("bare loop before: %s\nfirst sweep: %s\nbare loop between: %s\nsteady-state sweep: %s\n"+
			"state changes on a warm replica: %s\nbare loop after: %s\n",
			machineLoad(cb0, cb1), machineLoad(c0, c1), machineLoad(cm0, cm1), machineLoad(c2, c3), machineLoad(cw0, cw1), machineLoad(c4, c5))
		rate := func(d time.Duration) float64 { return float64(total) / d.Seconds() }
		// Each sweep against the faster of the bare loops next to it
		// (before and between for the first sweep, between and after for
		// the steady state): the stricter of the two, measured closest in
		// time. Printed too: against the fastest of all three, the figure
		// until session 9 (with two bare loops, before and after), which
		// counts the machine's drift between phases a minute apart.
		firstBare := max(rate(bare0), rate(bareMid))
		steadyBare := max(rate(bareMid), rate(bare1))
		fastest := max(rate(bare0), rate(bareMid), rate(bare1))
		b.ReportMetric(rate(first), "first-checks/s")
		b.ReportMetric(rate(steady), "steady-checks/s")
		b.ReportMetric(fastest, "bare-checks/s")
		b.ReportMetric(rate(first)/firstBare, "first-ratio")
		b.ReportMetric(rate(steady)/steadyBare, "steady-ratio")
		fmt.Printf("first sweep of %d integrations (all change state): %v, %.0f checks/s (%d healthy)\n",
			total, first.Round(time.Millisecond), rate(first), firstHealthy)
		fmt.Printf("steady-state sweep of %d integrations: %v, %.0f checks/s (%d healthy)\n", total, steady.Round(time.Millisecond), rate(steady), healthy)
		fmt.Printf("bare loop (Vault read + token + 4 Graph GETs): before the sweeps %v, %.0f checks/s; between them %v, %.0f checks/s; after them %v, %.0f checks/s (%d errors)\n",
			bare0.Round(time.Millisecond), rate(bare0), bareMid.Round(time.Millisecond), rate(bareMid),
			bare1.Round(time.Millisecond), rate(bare1), bareErrors.Load())
		fmt.Printf("ratio to the bare loop (target >= 0.8), against the faster of the two next to each sweep: first sweep %.2f, steady-state sweep %.2f\n",
			rate(first)/firstBare, rate(steady)/steadyBare)
		fmt.Printf("ratio against the fastest of the three bare loops: first sweep %.2f, steady-state sweep %.2f\n",
			rate(first)/fastest, rate(steady)/fastest)
		// The warm replica's state changes ran between the steady state
		// and the bare loop after it: against the faster of the bare loops
		// between and after the sweeps, as the steady state.
		b.ReportMetric(rate(warm)/steadyBare, "warm-first-ratio")
		fmt.Printf("state changes on a warm replica: %v, %.0f checks/s (%d healthy); ratio %.2f (against the fastest: %.2f)\n",
			warm.Round(time.Millisecond), rate(warm), warmHealthy, rate(warm)/steadyBare, rate(warm)/fastest)
		fmt.Printf("for reference, the Microsoft calls alone: %.0f checks/s (steady-state sweep %.2f of it)\n", rate(msOnly), rate(steady)/rate(msOnly))
		if healthy != total || firstHealthy != total || warmHealthy != total {
			b.Fatalf("%d (first sweep), %d (steady state) and %d (warm replica) of %d checks healthy", firstHealthy, healthy, warmHealthy, total)
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
