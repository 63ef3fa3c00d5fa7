// Package uow is the unit of work: a use case opens one transaction and
// passes it to every store call and every job it enqueues that must commit
// together with them. Stores never open transactions of their own.
//
//	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
//		d, err := s.store.DeleteIntegration(ctx, tx, org, id, version)
//		if err != nil {
//			return err
//		}
//		return s.jobs.DestroySecret(ctx, tx, org, d.Path) // River InsertTx: commits with the delete
//	})
//
// Reads and single-statement writes that need no transaction take
// Runner.Conn(): the same interface, each statement committing on its own.
package uow

import "context"

// Tx is an open unit of work (or, from Runner.Conn, a connection with
// autocommit). Only the storage adapter knows what is inside; domain code
// passes it through.
type Tx interface {
	// Transactional reports whether statements run in one transaction.
	Transactional() bool
}

// Runner starts units of work.
type Runner interface {
	// InTx runs fn in one transaction: committed when fn returns nil, rolled
	// back otherwise (and on panic). fn must not keep tx after it returns.
	InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Conn returns a handle whose statements each commit on their own.
	Conn() Tx
}

// Savepointer is implemented by a Runner whose transactions nest.
type Savepointer interface {
	// Savepoint runs fn in a savepoint of tx (a transaction of InTx): what
	// fn wrote is kept with tx when fn returns nil, and rolled back, alone,
	// when it fails; tx goes on either way.
	Savepoint(ctx context.Context, tx Tx, fn func(ctx context.Context, tx Tx) error) error
}
