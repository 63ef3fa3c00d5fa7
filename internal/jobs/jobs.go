// Package jobs runs dzconnect's background work on River, a job queue in
// Postgres: any number of replicas share the work, each job runs once, and
// a replica killed mid-job loses nothing (River rescues the job). Jobs:
//
//   - sweep (periodic, leader only, every few minutes and at start): enqueues
//     a check for each integration whose last check is older than the sweep
//     interval, spread over a jitter window; a check job is unique per
//     integration while it is waiting or running, and a finished check
//     moves the integration's last check time, so replicas, restarts and
//     leader changes neither skip nor double-check;
//   - check: verifies one integration (verify.Service), limited globally by
//     the queue's worker count and per customer tenant by a semaphore.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// QueueChecks is the queue of check jobs.
const QueueChecks = "checks"

// Ref names one integration for the sweep.
type Ref struct{ Org, Tenant, ID uuid.UUID }

// Source lists the integrations due for a check (last checked before
// dueBefore, or never), in ID order, for the sweep.
type Source interface {
	ListDueIntegrationRefs(ctx context.Context, dueBefore time.Time, after uuid.UUID, limit int) ([]Ref, error)
}

// Checker runs a check.
type Checker interface {
	Run(ctx context.Context, org, id uuid.UUID, trigger string) (verify.Result, error)
}

// Config tunes the background work.
type Config struct {
	SweepInterval   time.Duration // each integration is checked about this often; default 6h
	SweepJitter     time.Duration // checks spread over [0, jitter); default 30m
	Concurrency     int           // check workers per replica; default 50
	PerTenant       int           // concurrent checks per customer tenant per replica; default 2
	CheckTimeout    time.Duration // default 2m
	RescueAfter     time.Duration // a running job older than this is rescued (replica died); default 10m
	DisableSchedule bool          // no periodic sweep (workers only)
}

func (c *Config) defaults() {
	if c.SweepInterval <= 0 {
		c.SweepInterval = 6 * time.Hour
	}
	if c.SweepJitter < 0 {
		c.SweepJitter = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if c.PerTenant <= 0 {
		c.PerTenant = 2
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = 2 * time.Minute
	}
	if c.RescueAfter <= 0 {
		c.RescueAfter = 10 * time.Minute
	}
}

// jobTimeoutMargin is what a check job may take beyond its check's own
// deadline (recording the result).
const jobTimeoutMargin = 5 * time.Second

// sweepTick is how often the leader looks for due integrations: a twelfth
// of the interval, between 10 seconds and 5 minutes.
func sweepTick(interval time.Duration) time.Duration {
	return min(max(interval/12, 10*time.Second), 5*time.Minute)
}

// checkUnique makes a check job unique per integration while it waits or
// runs (a finished one does not block the next period's).
var checkUnique = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}}

// CheckArgs is a check job.
type CheckArgs struct {
	Org         uuid.UUID `json:"org"`
	Tenant      uuid.UUID `json:"tenant"`
	Integration uuid.UUID `json:"integration"`
}

// Kind implements river.JobArgs.
func (CheckArgs) Kind() string { return "check_integration" }

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "sweep" }

// Queue is the River client with dzconnect's workers.
type Queue struct {
	client *river.Client[pgx.Tx]
	cfg    Config
	log    *slog.Logger
}

// Extension adds a domain package's workers to the Queue: the kinds it
// registers, the queue they run on (created with MaxWorkers when new) and
// its periodic jobs. Domain packages (operations, webhooks, ...) provide
// one, so that all background work shares one River client.
type Extension struct {
	Queue      string // "" is River's default queue
	MaxWorkers int    // for a new queue; default 10
	Register   func(*river.Workers)
	Periodic   []*river.PeriodicJob
}

// New builds the queue; Start runs it.
func New(pool *pgxpool.Pool, cfg Config, source Source, checker Checker, log *slog.Logger, extensions ...Extension) (*Queue, error) {
	cfg.defaults()
	q := &Queue{cfg: cfg, log: log}
	workers := river.NewWorkers()
	river.AddWorker(workers, &checkWorker{q: q, checker: checker, sem: map[uuid.UUID]chan struct{}{}})
	river.AddWorker(workers, &sweepWorker{q: q, source: source})
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}, QueueChecks: {MaxWorkers: cfg.Concurrency}}
	var periodic []*river.PeriodicJob
	for _, e := range extensions {
		if e.Register != nil {
			e.Register(workers)
		}
		name := e.Queue
		if name == "" {
			name = river.QueueDefault
		}
		if _, ok := queues[name]; !ok {
			n := e.MaxWorkers
			if n <= 0 {
				n = 10
			}
			queues[name] = river.QueueConfig{MaxWorkers: n}
		}
		periodic = append(periodic, e.Periodic...)
	}
	rc := &river.Config{
		Logger:               log.With("component", "river"),
		Queues:               queues,
		Workers:              workers,
		RescueStuckJobsAfter: cfg.RescueAfter,
		// Checks are short and I/O-bound: fetch again soon after workers
		// free up (River's default cooldown of 100ms caps a queue at
		// MaxWorkers jobs per 100ms).
		FetchCooldown:     25 * time.Millisecond,
		FetchPollInterval: 500 * time.Millisecond,
		JobTimeout:        cfg.CheckTimeout + jobTimeoutMargin,
		MaxAttempts:       5,
	}
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

// Stop stops the queue: running checks may finish until ctx ends; then
// they are canceled (a canceled check records nothing and its job is run
// again later).
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil {
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

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	q      *Queue
	source Source
}

// Timeout lets a sweep of a large fleet take its time.
func (w *sweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return 30 * time.Minute }

// Work enqueues a check per due integration: last checked more than the
// interval (less the jitter, so that the spread keeps the average period)
// ago, or never.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	after := uuid.Nil
	total := 0
	due := time.Now().Add(-(w.q.cfg.SweepInterval - w.q.cfg.SweepJitter))
	for {
		refs, err := w.source.ListDueIntegrationRefs(ctx, due, after, 1000)
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			break
		}
		params := make([]river.InsertManyParams, 0, len(refs))
		now := time.Now()
		for _, r := range refs {
			at := now
			if w.q.cfg.SweepJitter > 0 {
				at = now.Add(rand.N(w.q.cfg.SweepJitter))
			}
			params = append(params, river.InsertManyParams{
				Args:       CheckArgs{Org: r.Org, Tenant: r.Tenant, Integration: r.ID},
				InsertOpts: &river.InsertOpts{Queue: QueueChecks, ScheduledAt: at, UniqueOpts: checkUnique},
			})
		}
		if _, err := w.q.client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("enqueueing checks: %w", err)
		}
		total += len(refs)
		after = refs[len(refs)-1].ID
	}
	if total > 0 {
		w.q.log.InfoContext(ctx, "sweep enqueued checks", "integrations", total, "jitter", w.q.cfg.SweepJitter)
	}
	return nil
}

type checkWorker struct {
	river.WorkerDefaults[CheckArgs]
	q       *Queue
	checker Checker
	mu      sync.Mutex
	sem     map[uuid.UUID]chan struct{}
}

func (w *checkWorker) Timeout(*river.Job[CheckArgs]) time.Duration { return w.q.cfg.CheckTimeout }

func (w *checkWorker) tenantSlot(tenant uuid.UUID) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.sem[tenant]
	if !ok {
		s = make(chan struct{}, w.q.cfg.PerTenant)
		w.sem[tenant] = s
	}
	return s
}

// Work runs one check. A tenant at its concurrency limit is waited for
// briefly; if it stays busy the job is snoozed instead of holding a worker.
func (w *checkWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	slot := w.tenantSlot(job.Args.Tenant)
	wait := time.NewTimer(250 * time.Millisecond)
	select {
	case slot <- struct{}{}:
		wait.Stop()
		defer func() { <-slot }()
	case <-wait.C:
		return river.JobSnooze(200*time.Millisecond + rand.N(500*time.Millisecond))
	case <-ctx.Done():
		wait.Stop()
		return ctx.Err()
	}
	_, err := w.checker.Run(ctx, job.Args.Org, job.Args.Integration, verify.TriggerSchedule)
	if apperr.Is(err, apperr.NotFound) {
		return nil // deleted since the sweep
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("check timed out: %w", err)
	}
	return err
}
