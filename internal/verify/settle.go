package verify

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// The settle re-check (issue 10 item 9b): a check that records a
// propagating verdict (lag inside the settle window after a change) queues,
// in the same transaction, a River job that checks the integration again
// when the window ends, so that its verdict becomes final by itself: a
// state change it finds is announced as any check's (integration.state_changed),
// and `dzctl check --wait` follows the integration's checks until then.

// SettleArgs is the River job of a settle re-check: unique per integration
// and window end, so every propagating check of one window queues one.
type SettleArgs struct {
	Org         uuid.UUID `json:"org"`
	Integration uuid.UUID `json:"integration"`
	WindowEnd   time.Time `json:"window_end"`
}

// Kind implements river.JobArgs.
func (SettleArgs) Kind() string { return "settle_recheck" }

// JobInserter inserts River jobs in the caller's unit of work
// (jobs.Inserter).
type JobInserter interface {
	Insert(ctx context.Context, tx uow.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// settleRecheckAttempts bounds a re-check's retries (a canceled check is
// retried; anything else is recorded as the check's steps).
const settleRecheckAttempts = 5

// queueSettle queues c's settle re-check in tx when c is propagating.
func (s *Service) queueSettle(ctx context.Context, tx uow.Tx, c Check) error {
	if s.jobs == nil || c.Outcome != integration.StatePropagating || c.SettleEnd == nil {
		return nil
	}
	return s.jobs.Insert(ctx, tx, SettleArgs{Org: c.Org, Integration: c.Integration, WindowEnd: c.SettleEnd.UTC()},
		&river.InsertOpts{Queue: s.settleQueue, ScheduledAt: *c.SettleEnd, MaxAttempts: settleRecheckAttempts,
			UniqueOpts: river.UniqueOpts{ByArgs: true}})
}

// SettleWorker runs settle re-checks; register it on the River client
// (river.AddWorker) with the queue given as Deps.SettleQueue.
type SettleWorker struct {
	river.WorkerDefaults[SettleArgs]
	s *Service
}

// SettleWorker returns the settle re-check worker.
func (s *Service) SettleWorker() *SettleWorker { return &SettleWorker{s: s} }

// RegisterSettle adds the settle re-check worker to a River client's
// workers (a jobs.Extension's Register).
func (s *Service) RegisterSettle(w *river.Workers) { river.AddWorker(w, s.SettleWorker()) }

// Timeout bounds one re-check (a check's own steps are bounded by the
// Microsoft calls' deadlines).
func (*SettleWorker) Timeout(*river.Job[SettleArgs]) time.Duration { return 2 * time.Minute }

// Work checks the integration (trigger "settle") and records the result:
// outside the window now, its verdict is final. A deleted integration has
// nothing to re-check.
func (w *SettleWorker) Work(ctx context.Context, job *river.Job[SettleArgs]) error {
	_, err := w.s.Run(ctx, job.Args.Org, job.Args.Integration, TriggerSettle)
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	return err
}
