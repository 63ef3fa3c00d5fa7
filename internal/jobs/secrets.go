package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// DestroySecretArgs destroys every version of a Vault KV v2 path whose
// owner is gone.
type DestroySecretArgs struct {
	Org  uuid.UUID `json:"org"`
	Path string    `json:"path" river:"unique"`
}

// Kind implements river.JobArgs.
func (DestroySecretArgs) Kind() string { return "destroy_secret" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique by path while
// it waits, runs or retries (a second queueing of the same path adds
// nothing), on the maintenance queue, retried for about a day.
func (DestroySecretArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: destroyMaxAttempts, UniqueOpts: river.UniqueOpts{
		ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}}}
}

// destroyMaxAttempts: with Backoff (15s doubling, capped at 1h) about 30
// hours of retries, enough to outlast a Vault outage; a job that still
// fails is kept by River as discarded, visible to operators.
const destroyMaxAttempts = 36

// Destroyer destroys a Vault path; destroying a missing path succeeds
// (integration.SecretStore, the Vault adapter, is one).
type Destroyer interface {
	Destroy(ctx context.Context, path string) error
}

// SecretGC implements secretgc.Queue with destroy_secret jobs inserted in
// the caller's unit of work.
type SecretGC struct{ ins *Inserter }

var _ secretgc.Queue = SecretGC{}

// NewSecretGC returns the queue.
func NewSecretGC(ins *Inserter) SecretGC { return SecretGC{ins: ins} }

// QueueDestroy implements secretgc.Queue.
func (g SecretGC) QueueDestroy(ctx context.Context, tx uow.Tx, org uuid.UUID, path string) error {
	if err := g.ins.Insert(ctx, tx, DestroySecretArgs{Org: org, Path: path}, nil); err != nil {
		return fmt.Errorf("queueing the destruction of a secret: %w", err)
	}
	return nil
}

// SecretGCExtension registers the destroy_secret worker.
func SecretGCExtension(d Destroyer) Extension {
	return Extension{Queue: QueueMaintenance, Register: func(w *river.Workers) {
		river.AddWorker(w, &destroyWorker{d: d})
	}}
}

type destroyWorker struct {
	river.WorkerDefaults[DestroySecretArgs]
	d Destroyer
}

func (w *destroyWorker) Timeout(*river.Job[DestroySecretArgs]) time.Duration { return time.Minute }

// NextRetry implements the shared retry policy.
func (w *destroyWorker) NextRetry(job *river.Job[DestroySecretArgs]) time.Time {
	return nextRetry(job.Attempt)
}

func (w *destroyWorker) Work(ctx context.Context, job *river.Job[DestroySecretArgs]) error {
	return Classify(w.d.Destroy(ctx, job.Args.Path))
}

// Outbox reads what the former secret_destructions outbox still holds.
type Outbox interface {
	ListSecretDestructions(ctx context.Context, tx uow.Tx, limit int) ([]DestroySecretArgs, []int64, error)
	DeleteSecretDestructions(ctx context.Context, tx uow.Tx, ids []int64) error
}

// MoveSecretOutbox turns the rows left in the former secret_destructions
// outbox into destroy_secret jobs, each batch in one transaction with the
// rows' deletion, so it is idempotent and safe for replicas starting
// together. It runs at start-up, after River's migrations. Nothing writes
// the table any more; it and this move go in a later release (doc.go).
func MoveSecretOutbox(ctx context.Context, tx uow.Runner, outbox Outbox, ins *Inserter) (int, error) {
	total := 0
	for {
		n := 0
		err := tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
			args, ids, err := outbox.ListSecretDestructions(ctx, tx, 500)
			if err != nil || len(args) == 0 {
				return err
			}
			// One job per path: the outbox may hold a path twice, and
			// River's unique insert refuses a duplicate within one batch
			// (a path in a later batch is skipped as a duplicate job).
			params := make([]river.InsertManyParams, 0, len(args))
			seen := make(map[string]bool, len(args))
			for _, a := range args {
				if !seen[a.Path] {
					seen[a.Path] = true
					params = append(params, river.InsertManyParams{Args: a})
				}
			}
			if err := ins.InsertMany(ctx, tx, params); err != nil {
				return err
			}
			n = len(ids)
			return outbox.DeleteSecretDestructions(ctx, tx, ids)
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}
