package e2e

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/app"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/vault"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// fleetFixture is one organization with several simulated customer
// tenants, each with several integrations, and a server without its own
// check workers: the tests run the "replicas".
type fleetFixture struct {
	s       *stack.Stack
	sim     *msftsim.Sim
	org     stack.Org
	tenants []string // simulated Entra tenant IDs
	ids     []uuid.UUID
}

func newFleetFixture(t *testing.T, tenants, perTenant int, rescueAfter time.Duration) *fleetFixture {
	t.Helper()
	sim := stack.StartSim(t)
	// This server may be River's leader, which rescues stuck jobs with its
	// own RescueStuckJobsAfter, and any replica may run a sweep with its
	// own jitter: it gets the replicas' settings.
	s := stack.Start(t, stack.Options{ExtraArgs: append(stack.SimArgs(sim), "--check-batch-slice", "1s", "--check-timeout", "5s",
		"--job-rescue-after", rescueAfter.String(), "--sweep-jitter", "0s")})
	f := &fleetFixture{s: s, sim: sim, org: s.NewOrg(t, "Fleet")}
	for range tenants {
		info, err := sim.Admin().AddTenant(msftsim.TenantSpec{})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := s.Clients().Tenants.CreateTenant(f.org.OperatorCtx, &v1.CreateTenantRequest{Parent: f.org.Name, Tenant: &v1.Tenant{
			EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer " + info.ID[:8]}})
		if err != nil {
			t.Fatal(err)
		}
		vf := verifyFixture{s: s, sim: sim, org: f.org, tenant: tr.GetTenant().GetName(), simTID: info.ID}
		for range perTenant {
			in, _ := vf.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
			id, err := uuid.Parse(in.GetName()[len(in.GetName())-36:])
			if err != nil {
				t.Fatal(err)
			}
			f.ids = append(f.ids, id)
		}
		f.tenants = append(f.tenants, info.ID)
	}
	return f
}

// replica is one dzconnect replica's background work, wired as
// internal/app wires it, on its own connection pool, so that it can be
// killed: its connections are cut and no new one is allowed, then its
// River client is stopped, so it writes nothing more, as after SIGKILL.
type replica struct {
	name     string
	queue    *jobs.Queue
	killed   atomic.Bool
	inFlight atomic.Int64 // checks running now
}

// countingChecker counts the replica's checks in flight (calling
// Microsoft; their records are written afterwards).
type countingChecker struct {
	r *replica
	jobs.Checker
}

func (c countingChecker) Check(ctx context.Context, tg verify.Target, trigger string) (verify.Pending, error) {
	c.r.inFlight.Add(1)
	defer c.r.inFlight.Add(-1)
	return c.Checker.Check(ctx, tg, trigger)
}

func (f *fleetFixture) replica(t *testing.T, name string, cfg jobs.Config) *replica {
	t.Helper()
	r := &replica{name: name}
	pc, err := pgxpool.ParseConfig(f.s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.RuntimeParams["application_name"] = name
	pc.BeforeConnect = func(context.Context, *pgx.ConnConfig) error {
		if r.killed.Load() {
			return errors.New("replica killed")
		}
		return nil
	}
	pc.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) { return !r.killed.Load(), nil }
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.DiscardHandler)
	db := postgres.New(pool)
	ins, err := jobs.NewInserter(pool)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := vault.New(t.Context(), vault.Config{Addr: f.s.Vault.Addr, Token: f.s.Vault.Token, Mount: f.s.Vault.Mount})
	if err != nil {
		t.Fatal(err)
	}
	ms := stack.SimClient(t, f.sim)
	integrations := integration.NewService(integration.Deps{Tx: db, Store: db, Secrets: secrets, Keys: db, Audit: db,
		GC: jobs.NewSecretGC(ins), Log: log})
	checks := verify.NewService(verify.Config{ExpiryWarning: 30 * 24 * time.Hour, SettleWindow: 5 * time.Minute},
		verify.Deps{Tx: db, Store: db, Notifier: webhook.NewNotifier(db, ins, 0), Audit: db, Integrations: integrations,
			Microsoft: app.VerifyMicrosoft(ms)})
	cfg.ClientID = name
	cfg.ObserveThrottle = microsoft.WithThrottleObserver
	cfg.DisableSchedule = true // the test enqueues the sweep
	r.queue, err = jobs.New(pool, db, cfg, db, countingChecker{r: r, Checker: checks}, log,
		jobs.SecretGCExtension(secrets), jobs.JanitorExtension(time.Minute, log))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.queue.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.queue.Stop(ctx)
	})
	return r
}

// kill cuts the replica off the database and stops it without letting it
// finish anything.
func (r *replica) kill(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	r.killed.Store(true)
	if _, err := admin.Exec(t.Context(), `select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, r.name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.queue.Client().StopAndCancel(ctx) // it cannot record anything any more
}

// sweep enqueues a sweep (one of the replicas runs it).
func (f *fleetFixture) sweep(t *testing.T, ctx context.Context) {
	t.Helper()
	ins, err := jobs.NewInserter(f.s.DB)
	if err != nil {
		t.Fatal(err)
	}
	if err := ins.Insert(ctx, postgres.New(f.s.DB).Conn(), jobs.SweepArgs{}, nil); err != nil {
		t.Fatal(err)
	}
}

// waitChecked polls until every integration has a scheduled check and no
// check batch is left to run.
func (f *fleetFixture) waitChecked(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		var checked, open int
		if err := f.s.DB.QueryRow(ctx, `select count(distinct integration_id) from checks where trigger = 'schedule'`).Scan(&checked); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DB.QueryRow(ctx, `select count(*) from river_job where kind in ('sweep', 'check_tenant_batch')
			and state not in ('completed', 'cancelled', 'discarded')`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if checked == len(f.ids) && open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d integrations checked, %d sweep or batch jobs open; jobs %v", checked, len(f.ids), open, f.jobs())
		case <-time.After(100 * time.Millisecond): // polling the database for the outcome
		}
	}
}

// jobs describes the River jobs (failure messages).
func (f *fleetFixture) jobs() []string {
	rows, err := f.s.DB.Query(context.Background(), `select kind || ' ' || state || ' ' || attempt::text || ' ' ||
		coalesce(attempted_by::text, '') || ' ' || coalesce(errors::text, '') from river_job order by id`)
	if err != nil {
		return []string{err.Error()}
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return []string{err.Error()}
	}
	return out
}

// checkedOnce asserts one scheduled check per integration.
func (f *fleetFixture) checkedOnce(t *testing.T, ctx context.Context) {
	t.Helper()
	var integrations, most int
	if err := f.s.DB.QueryRow(ctx, `select count(*), coalesce(max(n), 0) from (select count(*) n from checks
		where trigger = 'schedule' group by integration_id) x`).Scan(&integrations, &most); err != nil {
		t.Fatal(err)
	}
	if integrations != len(f.ids) || most != 1 {
		t.Fatalf("%d integrations checked, at most %d times; want each of %d exactly once", integrations, most, len(f.ids))
	}
}

// TestTenantLimitAcrossReplicas: three replicas sweep a fleet of a few
// tenants. Microsoft never sees more than PerTenant concurrent calls for a
// tenant (the limit is fleet-wide: one batch per tenant). A replica killed
// while its batches run strands only those batches (not one job per
// integration waiting for a slot), and after the rescue every integration
// has been checked exactly once.
func TestTenantLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	const tenants, perTenantIntegrations, limit = 6, 4, 2
	f := newFleetFixture(t, tenants, perTenantIntegrations, 25*time.Second)
	lat := faults.Duration(60 * time.Millisecond)
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Rule: faults.Rule{Latency: &faults.Latency{Min: lat, Max: lat}}}})
	f.sim.Admin().ResetCounters()
	cfg := jobs.Config{PerTenant: limit, Concurrency: 2, SweepInterval: time.Hour, CheckTimeout: 5 * time.Second,
		BatchSlice: time.Second, RescueAfter: 25 * time.Second}
	// C starts alone, so that it is certain to take batches (started with
	// the others, two replicas could take all six before C fetched); A and
	// B join as soon as C runs one, and run the rest beside it.
	c := f.replica(t, "replica-c", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	f.sweep(t, ctx)

	// Kill C as soon as it runs a batch with a check in flight, once the
	// sweep job (C's too, it is alone) has completed: a sweep cut off is
	// rescued only after its own timeout (2 minutes, River's rescuer
	// honours a kind's timeout), longer than this test waits, and the
	// batches are what this test is about. C takes the first batches
	// while the sweep is still listing tenants (insert notifications).
	var running int
	var swept bool
	for {
		if err := f.s.DB.QueryRow(ctx, `select count(*) filter (where kind = 'check_tenant_batch' and state = 'running'
			and attempted_by[array_length(attempted_by, 1)] = $1), coalesce(bool_and(state = 'completed') filter (where kind = 'sweep'), false)
			from river_job`, c.name).Scan(&running, &swept); err != nil {
			t.Fatalf("%v; jobs %v", err, f.jobs())
		}
		if swept && running > 0 && c.inFlight.Load() > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replica C never ran a batch; jobs %v", f.jobs())
		case <-time.After(10 * time.Millisecond): // polling for the moment to kill
		}
	}
	f.replica(t, "replica-a", cfg)
	f.replica(t, "replica-b", cfg)
	inFlight := c.inFlight.Load()
	c.kill(t, f.s.DB)
	var stranded, strandedOther int
	// Besides its batches, the replica may have been running (or River's
	// asynchronous completer not yet have marked done) a maintenance job
	// it works: a scheduled sweep (the stack's own), the janitor, a secret
	// destruction. Anything else running there would be a job that waited
	// on an in-process limit after being taken.
	if err := f.s.DB.QueryRow(ctx, `select count(*) filter (where kind = 'check_tenant_batch'),
		count(*) filter (where kind not in ('check_tenant_batch', 'sweep', 'janitor', 'destroy_secret'))
		from river_job where state = 'running' and attempted_by[array_length(attempted_by, 1)] = $1`, c.name).Scan(&stranded, &strandedOther); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed replica C with %d checks in flight; %d batch jobs left running", inFlight, stranded)
	// A replica runs up to twice Concurrency batches, with at most
	// Concurrency × PerTenant checks at once (its check slots).
	if strandedOther != 0 || stranded < 1 || stranded > tenants || stranded > 2*cfg.Concurrency {
		t.Fatalf("%d batch jobs and %d other jobs left running by the dead replica; want 1..%d batches only", stranded, strandedOther, min(tenants, 2*cfg.Concurrency))
	}
	if inFlight > int64(limit*stranded) || inFlight > int64(limit*cfg.Concurrency) {
		t.Fatalf("%d checks were in flight in %d batches; the limit is %d per batch and %d per replica", inFlight, stranded, limit, limit*cfg.Concurrency)
	}

	// The survivors rescue C's batches and finish: each integration once.
	f.waitChecked(t, ctx)
	f.checkedOnce(t, ctx)
	peaks := f.sim.Admin().PeakInFlight()
	for _, tid := range f.tenants {
		if peaks[tid] == 0 || peaks[tid] > limit {
			t.Errorf("tenant %s saw up to %d concurrent Microsoft calls, limit %d", tid, peaks[tid], limit)
		}
	}
	t.Logf("peak concurrent calls per tenant: %v", peaks)
}

// TestTenantThrottleAcrossReplicas: a tenant that answers 429 +
// Retry-After gets no call before the Retry-After ends, from any replica:
// the batch stops starting checks, records the throttle in Postgres and
// snoozes until then; a sweep meanwhile adds nothing.
func TestTenantThrottleAcrossReplicas(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t, 1, 4, 40*time.Second)
	tid := f.tenants[0]
	f.sim.Admin().SetFaults(faults.Config{Tenants: map[string]faults.Scope{tid: {Routes: map[string]faults.Rule{
		"graph.*": {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 3}},
	}}}})
	f.sim.Admin().ResetCounters()
	cfg := jobs.Config{PerTenant: 1, Concurrency: 2, SweepInterval: time.Hour, CheckTimeout: 10 * time.Second,
		BatchSlice: 5 * time.Second, RescueAfter: 20 * time.Second}
	f.replica(t, "replica-a", cfg)
	f.replica(t, "replica-b", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f.sweep(t, ctx)

	var until time.Time
	for {
		err := f.s.DB.QueryRow(ctx, `select until_time from tenant_throttles`).Scan(&until)
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the throttle was never recorded; jobs %v", f.jobs())
		case <-time.After(20 * time.Millisecond): // polling for the recorded throttle
		}
	}
	f.sweep(t, ctx) // while throttled: the tenant's batch is waiting, nothing is added
	f.waitChecked(t, ctx)
	f.checkedOnce(t, ctx)
	if n := f.sim.Admin().TotalEarlyRetries(); n != 0 {
		t.Fatalf("%d requests came back before Retry-After ended", n)
	}
	var throttledAt time.Time
	for _, e := range f.sim.Admin().Requests(0) {
		if e.Tenant == tid && e.Status == 429 {
			throttledAt = e.Time
		}
	}
	if throttledAt.IsZero() {
		t.Fatal("the tenant never answered 429")
	}
	for _, e := range f.sim.Admin().Requests(0) {
		if e.Tenant == tid && e.Time.After(throttledAt) && e.Time.Before(throttledAt.Add(3*time.Second)) {
			t.Fatalf("a call to the throttled tenant at %v, %v after the 429 (Retry-After 3s): %s", e.Time, e.Time.Sub(throttledAt), e.Route)
		}
	}
	var batches int
	if err := f.s.DB.QueryRow(ctx, `select count(*) from river_job where kind = 'check_tenant_batch'`).Scan(&batches); err != nil {
		t.Fatal(err)
	}
	if batches != 1 {
		t.Fatalf("%d batch jobs for the one tenant, want 1 (the throttled one waited, the second sweep added none)", batches)
	}
}
