package jobs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/dropzoneai/dzconnect/internal/uow"
)

// pgxTxer is implemented by the Postgres adapter's transactional uow.Tx.
type pgxTxer interface {
	PgxTx() pgx.Tx
}

// Inserter enqueues River jobs in the caller's unit of work: a job inserted
// through a transactional uow.Tx commits (or rolls back) with the state
// change that caused it, so a crash can neither lose the job nor run it for
// a change that never committed. It is an insert-only River client, built
// before the services that enqueue jobs (the working Queue is built after
// them, with their workers).
type Inserter struct {
	client *river.Client[pgx.Tx]
}

// NewInserter returns an insert-only client on pool.
func NewInserter(pool *pgxpool.Pool) (*Inserter, error) {
	// The tracing middleware stores the inserting span's context in the
	// job's metadata (tracing.go); an insert-only client starts no span.
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Middleware: []rivertype.Middleware{newTracing(nil)}})
	if err != nil {
		return nil, fmt.Errorf("job inserter: %w", err)
	}
	return &Inserter{client: c}, nil
}

// Insert enqueues one job within tx (or on its own for a Conn handle).
func (i *Inserter) Insert(ctx context.Context, tx uow.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	var err error
	if t, ok := tx.(pgxTxer); ok && tx.Transactional() {
		_, err = i.client.InsertTx(ctx, t.PgxTx(), args, opts)
	} else {
		_, err = i.client.Insert(ctx, args, opts)
	}
	return err
}

// InsertMany enqueues several jobs within tx (or on their own).
func (i *Inserter) InsertMany(ctx context.Context, tx uow.Tx, params []river.InsertManyParams) error {
	var err error
	if t, ok := tx.(pgxTxer); ok && tx.Transactional() {
		_, err = i.client.InsertManyTx(ctx, t.PgxTx(), params)
	} else {
		_, err = i.client.InsertMany(ctx, params)
	}
	return err
}
