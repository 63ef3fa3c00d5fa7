package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
)

// DefaultStatementTimeout bounds one statement (connection acquisition
// included) when SetStatementTimeout was not called.
const DefaultStatementTimeout = 10 * time.Second

// errStalled is the cause of a statement's own deadline: Postgres did not
// answer in time (a paused server, a black-holed network, an exhausted
// pool), as opposed to the caller's deadline.
var errStalled = errors.New("postgres statement timeout")

// SetStatementTimeout bounds each statement, Begin and Commit (issue 11
// item 9: a stalled Postgres answers Unavailable naming it within seconds,
// not at the caller's deadline). Call it before the DB is used.
func (db *DB) SetStatementTimeout(d time.Duration) {
	if d > 0 {
		db.timeout = d
	}
}

func (db *DB) statementTimeout() time.Duration {
	if db.timeout > 0 {
		return db.timeout
	}
	return DefaultStatementTimeout
}

// bound derives a statement's context: the caller's, cut at d.
func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, errStalled)
}

// stalled turns err into Unavailable naming Postgres when ctx ended by the
// statement's own deadline; other errors pass unchanged.
func stalled(ctx context.Context, d time.Duration, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errStalled) {
		return err
	}
	return apperr.Wrap(err, apperr.Unavailable, "Postgres did not answer within %s (--database-timeout); retry", d).WithReason("DATABASE_TIMEOUT")
}

// timed runs each statement of q under its own deadline.
type timed struct {
	q query.DBTX
	d time.Duration
}

var _ query.DBTX = timed{}

func (t timed) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := bound(ctx, t.d)
	defer cancel()
	tag, err := t.q.Exec(ctx, sql, args...)
	return tag, stalled(ctx, t.d, err)
}

// Query's deadline covers reading the rows: it ends when they are closed.
func (t timed) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := bound(ctx, t.d)
	rows, err := t.q.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return nil, stalled(ctx, t.d, err)
	}
	return &timedRows{Rows: rows, ctx: ctx, cancel: cancel, d: t.d}, nil
}

func (t timed) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	ctx, cancel := bound(ctx, t.d)
	return timedRow{row: t.q.QueryRow(ctx, sql, args...), ctx: ctx, cancel: cancel, d: t.d}
}

type timedRows struct {
	pgx.Rows
	ctx    context.Context
	cancel context.CancelFunc
	d      time.Duration
}

func (r *timedRows) Close() {
	r.Rows.Close()
	r.cancel()
}

func (r *timedRows) Err() error { return stalled(r.ctx, r.d, r.Rows.Err()) }

func (r *timedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	// Exhausted: pgx closed the rows; the deadline is no longer needed.
	r.cancel()
	return false
}

type timedRow struct {
	row    pgx.Row
	ctx    context.Context
	cancel context.CancelFunc
	d      time.Duration
}

func (r timedRow) Scan(dest ...any) error {
	defer r.cancel()
	return stalled(r.ctx, r.d, r.row.Scan(dest...))
}
