package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// BatchArgs is a customer tenant's check batch: it checks the tenant's due
// integrations, up to Config.PerTenant at a time.
type BatchArgs struct {
	Org    uuid.UUID `json:"org"`
	Tenant uuid.UUID `json:"tenant"`
}

// Kind implements river.JobArgs.
func (BatchArgs) Kind() string { return "check_tenant_batch" }

// InsertOpts implements river.JobArgsWithInsertOpts: on the checks queue,
// unique per tenant while it waits, runs or retries, so that at most one
// batch per tenant exists in the whole fleet. That is what makes
// Config.PerTenant a fleet-wide limit, applied before the job is taken.
func (BatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueChecks, UniqueOpts: batchUnique}
}

var batchUnique = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}}

// batchListSize is how many due integrations a batch reads at a time.
const batchListSize = 64

// openPerSlot: a batch has at most PerTenant*openPerSlot checks started and
// not yet recorded (PerTenant of them calling Microsoft).
const openPerSlot = 4

type batchWorker struct {
	river.WorkerDefaults[BatchArgs]
	q *Queue
}

// Timeout: the slice in which new checks start, the last check, and the
// bookkeeping.
func (w *batchWorker) Timeout(*river.Job[BatchArgs]) time.Duration {
	return w.q.cfg.BatchSlice + w.q.cfg.CheckTimeout + 10*time.Second
}

// NextRetry implements the shared retry policy.
func (w *batchWorker) NextRetry(job *river.Job[BatchArgs]) time.Time { return nextRetry(job.Attempt) }

// Work checks the tenant's due integrations, PerTenant at a time.
//
//   - A tenant Microsoft throttled (tenant_throttles, written by any
//     replica, read with the first page) is not called: the batch snoozes
//     until the Retry-After ends.
//   - When a call answers 429 + Retry-After, no further check starts; the
//     ones in flight finish (the Microsoft adapter honours the Retry-After
//     for their own calls), the throttle is recorded for every replica and
//     the batch snoozes until it ends.
//   - After BatchSlice no further check starts; the batch snoozes briefly
//     and continues as the same job with what is still due.
//   - A check that finished moved its integration's last check time, so a
//     batch that runs again (after a snooze, a retry or a rescue) skips it:
//     a crash strands only the checks that were in flight.
//   - Checks that failed make the batch fail after the others ran; River
//     retries it with backoff, and only those are still due.
func (w *batchWorker) Work(ctx context.Context, job *river.Job[BatchArgs]) error {
	cfg := &w.q.cfg
	t := TenantRef{Org: job.Args.Org, Tenant: job.Args.Tenant}
	conn := w.q.tx.Conn()
	start := time.Now()
	var (
		targets []verify.Target
		until   time.Time
	)
	// list reads a page of targets (integration, active credential,
	// tenant) and the tenant's throttle, in one query, as one of the
	// replica's batch readers. A target is read up to a page's duration
	// before its check; a change meanwhile moves the integration's
	// version, and the record keeps such a check as history only (stale).
	list := func(after uuid.UUID) error {
		select {
		case w.q.readSlots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-w.q.readSlots }()
		var err error
		targets, until, err = w.q.fleet.ListDueTargets(ctx, conn, t, start.Add(-cfg.dueAge()), after, batchListSize)
		return err
	}
	// The first page: a tenant Microsoft throttled (any replica recorded
	// it) is not called.
	if err := list(uuid.Nil); err != nil {
		return Classify(err)
	}
	if until.After(start) {
		return river.JobSnooze(until.Sub(start))
	}
	var (
		mu        sync.Mutex
		throttled time.Time
		failed    []error
	)
	isThrottled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !throttled.IsZero()
	}
	cctx := ctx
	if cfg.ObserveThrottle != nil {
		cctx = cfg.ObserveThrottle(ctx, func(u time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if u.After(throttled) {
				throttled = u
			}
		})
	}
	// slots: checks calling Microsoft at once (the per-tenant limit; a
	// check frees its slot as soon as its Microsoft calls are over). open:
	// checks started and not yet recorded, so that records waiting for
	// their group cannot pile up behind a slow database.
	slots := make(chan struct{}, cfg.PerTenant)
	open := make(chan struct{}, cfg.PerTenant*openPerSlot)
	var wg sync.WaitGroup
	more := false
	// running: checks started whose Microsoft calls are not over; the
	// last one to end once every check has started is the batch's last
	// record (verify.Pending.Last), written without waiting for others
	// (under mu).
	running, dispatched := 0, false
fill:
	for page := 0; ; page++ {
		if page > 0 {
			if err := list(targets[len(targets)-1].Integration.ID); err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
				break
			}
		}
		for _, tg := range targets {
			select {
			case open <- struct{}{}:
			case <-ctx.Done():
				break fill
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				<-open
				break fill
			}
			// Then one of the replica's check slots (the tenant's first:
			// a batch waiting here holds one tenant slot, never a replica
			// slot, so batches cannot starve each other).
			select {
			case w.q.checkSlots <- struct{}{}:
			case <-ctx.Done():
				<-slots
				<-open
				break fill
			}
			if isThrottled() {
				<-w.q.checkSlots
				<-slots
				<-open
				break fill
			}
			if time.Since(start) > cfg.BatchSlice {
				<-w.q.checkSlots
				<-slots
				<-open
				more = true
				break fill
			}
			wg.Add(1)
			mu.Lock()
			running++
			mu.Unlock()
			w.q.workers.Go(func() {
				defer wg.Done()
				defer func() { <-open }()
				rctx, cancel := context.WithTimeout(cctx, cfg.CheckTimeout)
				p, err := w.q.checker.Check(rctx, tg, verify.TriggerSchedule)
				cancel()
				<-w.q.checkSlots
				<-slots // the Microsoft calls are over: the tenant's next check may start
				mu.Lock()
				running--
				last := dispatched && running == 0
				mu.Unlock()
				if last {
					p = p.Last()
				}
				if err == nil {
					// Recorded while the next check runs; the batch waits
					// for every record before it ends (wg), so a batch ends,
					// snoozes or fails only once its checks are written, and
					// one that dies before is run again: unrecorded checks
					// are still due.
					_, err = w.q.checker.Commit(ctx, p)
				}
				if err != nil && !apperr.Is(err, apperr.NotFound) { // NotFound: deleted since listed
					mu.Lock()
					failed = append(failed, fmt.Errorf("checking integration %s: %w", tg.Integration.ID, err))
					mu.Unlock()
				}
			})
		}
		if len(targets) < batchListSize {
			break
		}
	}
	mu.Lock()
	dispatched = true
	mu.Unlock()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if isThrottled() {
		// Recorded for every replica: the sweep schedules this tenant's
		// next batch at or after it, and a batch taken earlier snoozes.
		if err := w.q.fleet.ThrottleTenant(ctx, conn, t, throttled); err != nil {
			return Classify(err)
		}
		w.q.log.InfoContext(ctx, "tenant throttled by Microsoft; its batch waits", "until", throttled)
		return river.JobSnooze(max(time.Until(throttled), 0))
	}
	if len(failed) > 0 {
		return errors.Join(failed...) // retried with backoff: only these are still due
	}
	if more {
		return river.JobSnooze(0)
	}
	return nil
}
