package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// JanitorTask is one piece of housekeeping: it returns how much it did.
type JanitorTask struct {
	Name string
	Run  func(ctx context.Context) (int, error)
}

// JanitorArgs is the periodic janitor job.
type JanitorArgs struct{}

// Kind implements river.JobArgs.
func (JanitorArgs) Kind() string { return "janitor" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (JanitorArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueMaintenance} }

// JanitorExtension runs tasks every interval as one periodic job: on the
// elected leader only (River's periodic jobs), unique per period so a
// leader change does not run it twice, retried with the shared policy.
// It replaces the per-replica ticker goroutines.
func JanitorExtension(interval time.Duration, log *slog.Logger, tasks ...JanitorTask) Extension {
	if interval <= 0 {
		interval = time.Minute
	}
	return Extension{
		Queue:    QueueMaintenance,
		Register: func(w *river.Workers) { river.AddWorker(w, &janitorWorker{tasks: tasks, log: log}) },
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(interval),
			func() (river.JobArgs, *river.InsertOpts) {
				return JanitorArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
			},
			&river.PeriodicJobOpts{ID: "janitor", RunOnStart: true},
		)},
	}
}

type janitorWorker struct {
	river.WorkerDefaults[JanitorArgs]
	tasks []JanitorTask
	log   *slog.Logger
}

func (w *janitorWorker) Timeout(*river.Job[JanitorArgs]) time.Duration { return time.Minute }

// NextRetry implements the shared retry policy.
func (w *janitorWorker) NextRetry(job *river.Job[JanitorArgs]) time.Time {
	return nextRetry(job.Attempt)
}

// Work runs every task; one failing does not keep the others from running.
func (w *janitorWorker) Work(ctx context.Context, job *river.Job[JanitorArgs]) error {
	var errs []error
	for _, t := range w.tasks {
		n, err := t.Run(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name, err))
			continue
		}
		if n > 0 {
			w.log.InfoContext(ctx, "janitor", "task", t.Name, "count", n)
		}
	}
	return errors.Join(errs...)
}
