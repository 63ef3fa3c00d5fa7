package operation

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// JanitorArgs is the operations janitor's periodic job (leader only,
// unique per period).
type JanitorArgs struct{}

// Kind implements river.JobArgs.
func (JanitorArgs) Kind() string { return "operation_janitor" }

// InsertOpts implements river.JobArgsWithInsertOpts: the maintenance
// queue, which every replica works (no replica works River's default
// queue: a janitor job there would never run, and a dead replica's
// operation would wait for River's rescue of its job instead).
func (JanitorArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance}
}

// janitorBatch is how many operations one janitor run takes over at most;
// the rest wait for the next run.
const janitorBatch = 200

type janitorWorker struct {
	river.WorkerDefaults[JanitorArgs]
	r *Runner
}

// Timeout bounds one janitor run.
func (w *janitorWorker) Timeout(*river.Job[JanitorArgs]) time.Duration { return time.Minute }

// Work takes over the operations of dead runners.
func (w *janitorWorker) Work(ctx context.Context, _ *river.Job[JanitorArgs]) error {
	n, err := w.r.TakeOver(ctx)
	if n > 0 {
		w.r.log.InfoContext(ctx, "operations taken over from dead runners", "count", n)
	}
	return err
}

// TakeOver hands every operation whose runner died to a new River job
// (the janitor's work; exported for tests). A runner is dead when its
// lease expired: a live runner renews it every third of Config.Lease while
// a step runs, and releases it whenever it stops holding the operation.
// An operation nobody holds and nothing touched for Config.OrphanAfter,
// with no step waiting for a later attempt, has lost its job and is
// handed over too.
//
// Each takeover is one transaction: lock the operation, re-check (it may
// have moved on since the scan), clear the lease and bump the incarnation
// (SupersedeRun), and insert a RunArgs job of that incarnation. The old
// job may still be "running" for River (its replica died), which River's
// uniqueness would let no new job past: the incarnation makes the new
// job's args, and so its unique key, different, and the old job ends
// without doing anything whenever it runs again. A hung (not dead) runner
// loses its lease at its next renewal and records nothing: only one
// runner ever runs the operation's steps.
func (r *Runner) TakeOver(ctx context.Context) (int, error) {
	cands, err := r.store.ListStaleOperations(ctx, r.tx.Conn(), r.cfg.OrphanAfter, janitorBatch)
	if err != nil {
		return 0, fmt.Errorf("listing stale operations: %w", err)
	}
	n := 0
	for _, c := range cands {
		took := false
		err := r.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
			took = false
			op, now, err := r.store.LockOperation(ctx, tx, c.Org, c.ID)
			if err != nil {
				return err
			}
			if !r.stale(op, now) {
				return nil
			}
			inc, err := r.store.SupersedeRun(ctx, tx, c.Org, c.ID)
			if err != nil {
				return err
			}
			took = true
			return r.jobs.Insert(ctx, tx, RunArgs{Org: c.Org, ID: c.ID, Incarnation: inc}, nil)
		})
		switch {
		case apperr.Is(err, apperr.NotFound):
			continue // deleted meanwhile
		case err != nil:
			return n, fmt.Errorf("taking over operation %s: %w", c, err)
		case took:
			r.log.WarnContext(ctx, "operation taken over from a dead runner", "operation", c.String())
			n++
		}
	}
	return n, nil
}

// stale is the janitor's rule, re-checked under the row lock: an
// unfinished operation whose lease expired, or (lost job) that nobody
// holds, untouched for OrphanAfter, with no step waiting for a later
// attempt.
func (r *Runner) stale(op Operation, now time.Time) bool {
	if op.Done() {
		return false
	}
	if op.LeaseOwner != uuid.Nil {
		return op.LeaseExpireTime != nil && op.LeaseExpireTime.Before(now)
	}
	touched := op.UpdateTime
	if op.LeaseExpireTime != nil && op.LeaseExpireTime.After(touched) {
		touched = *op.LeaseExpireTime // when it was last taken over
	}
	idleSince := now.Add(-r.cfg.OrphanAfter)
	if !touched.Before(idleSince) {
		return false
	}
	for _, st := range op.Steps {
		if st.State == StepPending && st.NextAttemptTime != nil && st.NextAttemptTime.After(idleSince) {
			return false // its job is snoozed until then
		}
	}
	return true
}
