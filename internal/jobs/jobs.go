// Package jobs runs all of dzconnect's background work on River, a job
// queue in Postgres: any number of replicas share the work, each job runs
// once, and a replica killed mid-job loses nothing (River rescues the job).
// One River client per replica carries every kind (see doc.go for the
// kinds, queues, uniqueness and retry policies); domain packages add theirs
// through an Extension.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// The queues.
const (
	// QueueChecks runs tenant check batches (check_tenant_batch).
	QueueChecks = "checks"
	// QueueMaintenance runs the sweep, the janitor and secret destructions.
	QueueMaintenance = "maintenance"
)

// TenantRef names one customer tenant of an organization.
type TenantRef struct {
	Org, Tenant uuid.UUID
	// ThrottledUntil is until when Microsoft asked the tenant to be left
	// alone (a past time: not throttled), as listed by the sweep.
	ThrottledUntil time.Time
}

// Fleet is what the sweep and the tenant batches read and write. Its
// methods span organizations (background work) and run in the caller's
// unit of work.
type Fleet interface {
	// ListDueTenants lists tenants with a visible integration last checked
	// before dueBefore (or never), in (Org, Tenant) order after after.
	ListDueTenants(ctx context.Context, tx uow.Tx, dueBefore time.Time, after TenantRef, limit int) ([]TenantRef, error)
	// ListDueTargets lists one tenant's due integrations in ID order after
	// after, each with what its check needs (its tenant, its active
	// credential), and until when the tenant is throttled (the zero time:
	// not throttled, or nothing listed): one query per page, none per
	// check.
	ListDueTargets(ctx context.Context, tx uow.Tx, t TenantRef, dueBefore time.Time, after uuid.UUID, limit int) ([]verify.Target, time.Time, error)
	// ThrottleTenant records that the tenant is throttled until until (the
	// later of this and what was recorded wins).
	ThrottleTenant(ctx context.Context, tx uow.Tx, t TenantRef, until time.Time) error
	// DeleteExpiredThrottles forgets throttles that ended before before.
	DeleteExpiredThrottles(ctx context.Context, tx uow.Tx, before time.Time) (int, error)
}

// Checker runs the checks of a batch in two parts: Check makes a check's
// calls to Microsoft (the per-tenant limit is about these), Commit records
// its result (Postgres only; concurrent commits are written in groups).
// verify.Service is one.
type Checker interface {
	Check(ctx context.Context, t verify.Target, trigger string) (verify.Pending, error)
	Commit(ctx context.Context, p verify.Pending) (verify.Result, error)
}

// Config tunes the background work.
type Config struct {
	SweepInterval time.Duration // each integration is checked about this often; default 6h
	SweepJitter   time.Duration // tenant batches start spread over [0, jitter); default 0
	// Concurrency sizes one replica's checking: Concurrency × PerTenant
	// checks call Vault and Microsoft at once (the replica's check slots,
	// shared by its batches), and up to batchWorkersPerSlot × Concurrency
	// tenant batches (workers of the checks queue) run at once to keep
	// those slots busy while other batches wind down; default 25.
	Concurrency int
	// PerTenant is how many checks of one customer tenant run at once in
	// the whole fleet: a tenant has at most one batch (unique job) and the
	// batch runs up to PerTenant checks concurrently; default 2.
	PerTenant    int
	CheckTimeout time.Duration // one check; default 2m
	// BatchSlice is how long a batch starts new checks; then it snoozes
	// and continues as the same job, so a batch stays short and a crash
	// strands little; default 1m.
	BatchSlice time.Duration
	// RescueAfter: a job running longer than this is rescued (its replica
	// died). River applies it to every kind of the client, so every kind
	// is kept shorter: default BatchSlice + CheckTimeout + 1m.
	RescueAfter time.Duration
	// ObserveThrottle returns ctx carrying f, which the Microsoft adapter
	// calls with until when Microsoft asked a call's caller to wait (429 +
	// Retry-After). Nil: throttles are not shared between replicas.
	ObserveThrottle func(ctx context.Context, f func(until time.Time)) context.Context
	DisableSchedule bool // no periodic sweep (workers only)
	// NoChecks: this replica runs no check batches (it still runs the
	// other kinds, the sweep included: the sweep only enqueues batches).
	NoChecks bool
	// ClientID names this replica's River client (tests run several in one
	// process); default River's.
	ClientID string
	// TracerProvider starts each worked job's span (tracing.go); nil: none.
	TracerProvider trace.TracerProvider
}

func (c *Config) defaults() {
	if c.SweepInterval <= 0 {
		c.SweepInterval = 6 * time.Hour
	}
	if c.SweepJitter < 0 {
		c.SweepJitter = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 25
	}
	if c.PerTenant <= 0 {
		c.PerTenant = 2
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = 2 * time.Minute
	}
	if c.BatchSlice <= 0 {
		c.BatchSlice = time.Minute
	}
	if c.RescueAfter <= 0 {
		c.RescueAfter = c.BatchSlice + c.CheckTimeout + time.Minute
	}
}

// dueAge is how old a last check must be for the sweep: the interval less
// the jitter, so that the spread keeps the average period.
func (c *Config) dueAge() time.Duration { return c.SweepInterval - c.SweepJitter }

// maintenanceWorkers run the sweep, the janitor and secret destructions.
const maintenanceWorkers = 4

// sweepTick is how often the leader looks for due integrations: a twelfth
// of the interval, between 10 seconds and 5 minutes.
func sweepTick(interval time.Duration) time.Duration {
	return min(max(interval/12, 10*time.Second), 5*time.Minute)
}

// Queue is the River client with dzconnect's workers.
type Queue struct {
	client  *river.Client[pgx.Tx]
	cfg     Config
	tx      uow.Runner
	fleet   Fleet
	checker Checker
	log     *slog.Logger
	// checkSlots: checks of this replica calling Vault and Microsoft at
	// once (Concurrency × PerTenant), whichever batch they belong to.
	checkSlots chan struct{}
	// readSlots: batches of this replica reading their pages from
	// Postgres at once (batchReaders).
	readSlots chan struct{}
	// workers: the goroutines the replica's checks run on (workers.go).
	workers *workers
}

// batchReaders is how many of a replica's batches read a page of targets
// at once. A sweep starts every batch at once (up to 2 × Concurrency):
// unbounded, their page reads took a connection each, so that the pool
// grew to its maximum at every sweep's start, each new connection a new
// Postgres backend paying its start and its first plans (BenchmarkSweep,
// session 8: about 40 connections and most of the first sweep's Postgres
// CPU at 2,000 integrations). A page read takes about a millisecond; a
// batch waiting here holds no check slot.
const batchReaders = 4

// batchWorkersPerSlot: a replica runs up to this many times Concurrency
// batches, with no more checks at once than Concurrency full batches.
// A batch's end leaves its slots idle (its last check runs alone, then
// it waits for its records and River completes it and fetches the next
// one); the extra batches fill them, so that the replica's checks stay in
// flight when tenants are small. A tenant still has one batch and
// PerTenant checks at most.
const batchWorkersPerSlot = 2

// checksFetchPoll is the checks queue's River fetch poll (and checksFetch
// Cooldown its minimum gap between fetches): how soon a freed batch worker
// is refilled when no insert notification wakes the producer (River
// fetches at once when a worker frees up after a fetch found every worker
// busy, not otherwise). One indexed query per replica at most every
// checksFetchPoll while the queue is idle.
const (
	checksFetchPoll     = 100 * time.Millisecond
	checksFetchCooldown = 10 * time.Millisecond
)

// Extension adds a domain package's workers to the Queue: the kinds it
// registers, the queue they run on (created with MaxWorkers when new) and
// its periodic jobs. Domain packages (operations, webhooks, ...) provide
// one, so that all background work shares one River client.
type Extension struct {
	Queue      string // "" is River's default queue
	MaxWorkers int    // for a new queue; default 10; negative: the queue is not worked on this replica
	// FetchCooldown, when set, is the new queue's minimum gap between
	// fetches (River's default for the client otherwise: 25 ms).
	FetchCooldown time.Duration
	Register      func(*river.Workers)
	Periodic      []*river.PeriodicJob
}

// New builds the queue; Start runs it.
func New(pool *pgxpool.Pool, tx uow.Runner, cfg Config, fleet Fleet, checker Checker, log *slog.Logger, extensions ...Extension) (*Queue, error) {
	cfg.defaults()
	q := &Queue{cfg: cfg, tx: tx, fleet: fleet, checker: checker, log: log,
		checkSlots: make(chan struct{}, cfg.Concurrency*cfg.PerTenant), readSlots: make(chan struct{}, batchReaders),
		workers: newWorkers(workerIdle)}
	workers := river.NewWorkers()
	river.AddWorker(workers, &batchWorker{q: q})
	river.AddWorker(workers, &sweepWorker{q: q})
	// A replica works the checks queue only with checks; the maintenance
	// queue always (the sweep here, the janitor and secret destruction
	// through extensions); the others as its extensions say.
	queues := map[string]river.QueueConfig{QueueMaintenance: {MaxWorkers: maintenanceWorkers}}
	if !cfg.NoChecks {
		queues[QueueChecks] = river.QueueConfig{MaxWorkers: batchWorkersPerSlot * cfg.Concurrency,
			FetchCooldown: checksFetchCooldown, FetchPollInterval: checksFetchPoll}
	}
	var periodic []*river.PeriodicJob
	for _, e := range extensions {
		if e.Register != nil {
			e.Register(workers)
		}
		name := e.Queue
		if name == "" {
			name = river.QueueDefault
		}
		if _, ok := queues[name]; !ok && e.MaxWorkers >= 0 {
			n := e.MaxWorkers
			if n == 0 {
				n = 10
			}
			if name == QueueMaintenance {
				n = maintenanceWorkers
			}
			queues[name] = river.QueueConfig{MaxWorkers: n, FetchCooldown: e.FetchCooldown}
		}
		periodic = append(periodic, e.Periodic...)
	}
	rc := &river.Config{
		ID:                   cfg.ClientID,
		Logger:               log.With("component", "river"),
		Queues:               queues,
		Workers:              workers,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchCooldown:        25 * time.Millisecond,
		FetchPollInterval:    500 * time.Millisecond,
		// Every kind sets its own Timeout; this bounds the others.
		JobTimeout:  cfg.RescueAfter * 3 / 4,
		MaxAttempts: 5,
		Middleware:  []rivertype.Middleware{newTracing(cfg.TracerProvider)},
	}
	// The sweep is scheduled by whichever replica River elects leader and
	// runs on the maintenance queue of any replica: it only enqueues
	// batches, which replicas with checks run.
	if !cfg.DisableSchedule {
		tick := sweepTick(cfg.SweepInterval)
		rc.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(tick),
			func() (river.JobArgs, *river.InsertOpts) {
				return SweepArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: tick}}
			},
			// River does not remember when a periodic job last ran, so a
			// new leader sweeps at once: only due integrations are checked.
			&river.PeriodicJobOpts{ID: "sweep", RunOnStart: true},
		)}
	}
	rc.PeriodicJobs = append(rc.PeriodicJobs, periodic...)
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	q.client = client
	return q, nil
}

// Start starts working; Stop finishes running jobs (up to ctx).
func (q *Queue) Start(ctx context.Context) error { return q.client.Start(ctx) }

// Stop stops the queue: running jobs may finish until ctx ends; then they
// are canceled (a canceled check records nothing and its batch runs again
// later).
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil {
		q.workers.close() // every job has returned: its checks too
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if cerr := q.client.StopAndCancel(cctx); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// Client exposes River (tests subscribe to events).
func (q *Queue) Client() *river.Client[pgx.Tx] { return q.client }

// EnqueueSweep asks for a sweep now (outside the schedule).
func (q *Queue) EnqueueSweep(ctx context.Context) error {
	_, err := q.client.Insert(ctx, SweepArgs{}, nil)
	return err
}
