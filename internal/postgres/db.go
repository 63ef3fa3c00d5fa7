// Package postgres is dzconnect's storage adapter: it implements the
// domain packages' Store interfaces with pgx v5, applies the embedded
// migrations with goose, and is the only place Postgres errors are
// translated into apperr kinds. Every query on customer data filters by
// organization_id; every write appends its audit event in the same
// transaction.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// DB implements every domain Store on one pool.
type DB struct {
	pool    *pgxpool.Pool
	timeout time.Duration // each statement's; see SetStatementTimeout
	// warmed receives each new connection's warm-up error (nil when it
	// warmed), up to MinConns of them (WaitWarm).
	warmed chan error
}

// Open connects to databaseURL and checks the connection. The pool keeps
// minConns connections open (capped at maxConns; 0: none), recreating
// them in the background as they age out; WaitWarm waits for the first
// ones. Every new connection plans the sweep's statements before it serves
// (warm.go).
func Open(ctx context.Context, databaseURL string, maxConns, minConns int32) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", redactURLError(err))
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	// Spans for statements made inside a traced call (tracing.go).
	cfg.ConnConfig.Tracer = tracer{}
	if minConns > 0 {
		cfg.MinConns = min(minConns, cfg.MaxConns)
	}
	db := &DB{warmed: make(chan error, cfg.MinConns)}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		registerUUID(c.TypeMap())
		// The warm-up is an optimization: a connection it could not warm
		// serves all the same, unless the failure closed it. WaitWarm
		// reports the failure (a replica logs it).
		werr := warm(ctx, c)
		select {
		case db.warmed <- werr:
		default: // MinConns reported already
		}
		if werr != nil && c.IsClosed() {
			return werr
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to Postgres: %w", err)
	}
	db.pool = pool
	return db, nil
}

// WaitWarm waits until the pool has opened and warmed its MinConns
// connections (pgxpool opens them in the background), or until ctx ends:
// a replica calls it before it takes jobs, so that its first sweep does
// not pay for new backends. It returns how many it saw, and the first
// warm-up that failed (those connections serve all the same).
func (db *DB) WaitWarm(ctx context.Context) (int, error) {
	var first error
	for n := range cap(db.warmed) {
		select {
		case err := <-db.warmed:
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return n, errors.Join(first, ctx.Err())
		}
	}
	return cap(db.warmed), first
}

// New wraps an existing pool (tests).
func New(pool *pgxpool.Pool) *DB { return &DB{pool: pool} }

// Close closes the pool.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that Postgres answers (readiness).
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Pool exposes the pool to the job queue and tests.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

var _ uow.Runner = (*DB)(nil)

// handle is this adapter's uow.Tx: a pgx transaction, or the pool for
// statements that commit on their own.
type handle struct {
	q  query.DBTX
	tx pgx.Tx // nil for the pool
}

func (h handle) Transactional() bool { return h.tx != nil }

// PgxTx exposes the pgx transaction to River's InsertTx (internal/jobs);
// nil for the pool.
func (h handle) PgxTx() pgx.Tx { return h.tx }

// InTx implements uow.Runner: fn's statements, and the jobs it inserts
// through the same tx, commit together. Errors are translated.
//
// Begin, each statement and Commit have their own deadline
// (SetStatementTimeout); River's InsertTx through PgxTx runs under the
// caller's.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context, tx uow.Tx) error) error {
	d := db.statementTimeout()
	bctx, cancel := bound(ctx, d)
	tx, err := db.pool.Begin(bctx)
	err = stalled(bctx, d, err)
	cancel()
	if err != nil {
		return translate(err, "")
	}
	defer func() {
		// After a failure or a panic; a no-op (ErrTxClosed) after Commit.
		rctx, cancel := bound(context.WithoutCancel(ctx), d)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := fn(ctx, handle{q: timed{q: tx, d: d}, tx: tx}); err != nil {
		return translate(err, "")
	}
	cctx, cancel := bound(ctx, d)
	defer cancel()
	return translate(stalled(cctx, d, tx.Commit(cctx)), "")
}

// Savepoint implements uow.Savepointer.
func (db *DB) Savepoint(ctx context.Context, t uow.Tx, fn func(ctx context.Context, tx uow.Tx) error) error {
	h, ok := t.(handle)
	if !ok || h.tx == nil {
		return fmt.Errorf("postgres: a savepoint needs a transaction of InTx, got %T", t)
	}
	d := db.statementTimeout()
	bctx, cancel := bound(ctx, d)
	sp, err := h.tx.Begin(bctx) // SAVEPOINT
	err = stalled(bctx, d, err)
	cancel()
	if err != nil {
		return translate(err, "")
	}
	if err := fn(ctx, handle{q: timed{q: sp, d: d}, tx: sp}); err != nil {
		rctx, cancel := bound(context.WithoutCancel(ctx), d)
		defer cancel()
		if rerr := sp.Rollback(rctx); rerr != nil { // ROLLBACK TO SAVEPOINT
			return translate(fmt.Errorf("%w (and rolling back to the savepoint: %w)", err, rerr), "")
		}
		return translate(err, "")
	}
	cctx, cancel := bound(ctx, d)
	defer cancel()
	return translate(stalled(cctx, d, sp.Commit(cctx)), "") // RELEASE SAVEPOINT
}

// Conn implements uow.Runner: statements on the pool, each its own
// transaction under its own deadline.
func (db *DB) Conn() uow.Tx { return handle{q: timed{q: db.pool, d: db.statementTimeout()}} }

// q returns the statement runner behind a uow.Tx of this adapter. A Tx
// from anywhere else is a programming error.
func q(t uow.Tx) query.DBTX {
	h, ok := t.(handle)
	if !ok {
		panic(fmt.Sprintf("postgres: foreign uow.Tx %T", t))
	}
	return h.q
}

// queries are the sqlc-generated statements (internal/postgres/queries).
var queries = query.New()

// redactURLError drops the error text that may echo a password in the URL.
func redactURLError(err error) error {
	return fmt.Errorf("malformed database URL (details withheld: it may contain a password)")
}
