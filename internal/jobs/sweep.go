package jobs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
)

// SweepArgs is the periodic sweep job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "sweep" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueMaintenance} }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	q *Queue
}

// Timeout: a sweep only lists tenants and inserts jobs; it stays well
// within the rescue window.
func (w *sweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return 2 * time.Minute }

// NextRetry implements the shared retry policy.
func (w *sweepWorker) NextRetry(job *river.Job[SweepArgs]) time.Time { return nextRetry(job.Attempt) }

// Work enqueues one check batch per customer tenant with due integrations,
// at a random point of the jitter window but never before the tenant's
// Retry-After ends. A batch is unique per tenant while it waits or runs,
// so a tenant already queued (or snoozed by a throttle) is skipped, and
// replicas, restarts and leader changes neither skip nor double-check.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	conn := w.q.tx.Conn()
	due := time.Now().Add(-w.q.cfg.dueAge())
	after := TenantRef{}
	total := 0
	for {
		ts, err := w.q.fleet.ListDueTenants(ctx, conn, due, after, 1000)
		if err != nil {
			return Classify(err)
		}
		if len(ts) == 0 {
			break
		}
		params := batchParams(ts, time.Now(), w.q.cfg.SweepJitter, rand.N[time.Duration])
		if _, err := w.q.client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("enqueueing tenant batches: %w", err)
		}
		total += len(ts)
		after = ts[len(ts)-1]
	}
	if total > 0 {
		w.q.log.InfoContext(ctx, "sweep enqueued tenant batches", "tenants", total, "jitter", w.q.cfg.SweepJitter)
	}
	return nil
}

// batchParams are the batch jobs of tenants ts: each at a random point of
// the jitter window after now (randN(jitter)), never before the tenant's
// Retry-After ends. A batch due now is inserted available: River wakes the
// checks queue's producers at once (an insert notification). One given a
// ScheduledAt, even now, would be inserted scheduled, and only the
// leader's scheduler, every 5 s, makes it available: BenchmarkSweep
// measured 1.2 to 3.2 s from the sweep to its first check, a third of a
// 2,000-integration sweep, with the jitter off.
func batchParams(ts []TenantRef, now time.Time, jitter time.Duration, randN func(time.Duration) time.Duration) []river.InsertManyParams {
	params := make([]river.InsertManyParams, 0, len(ts))
	for _, t := range ts {
		at := now
		if jitter > 0 {
			at = now.Add(randN(jitter))
		}
		if t.ThrottledUntil.After(at) {
			at = t.ThrottledUntil
		}
		var opts *river.InsertOpts
		if at.After(now) {
			opts = &river.InsertOpts{ScheduledAt: at}
		}
		params = append(params, river.InsertManyParams{Args: BatchArgs{Org: t.Org, Tenant: t.Tenant}, InsertOpts: opts})
	}
	return params
}
