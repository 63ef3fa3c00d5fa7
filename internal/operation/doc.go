// Package operation runs long-running work as operations
// (organizations/{o}/operations/{op}, in the spirit of AIP-151): an
// operation is a registered Kind's ordered Steps, persisted in Postgres
// (one row per operation, one per step) and driven by one River job per
// operation. docs/operations.md is the full description; the rules that
// matter to code using it:
//
// Starting. A use case calls Service.Start(ctx, tx, spec) inside its own
// transaction: the operation, its steps and its River job commit together
// with the use case's change, or not at all. The use case claims its
// request_id (idempotency.Store) and appends its audit event in that tx.
//
// Steps must be idempotent. The runner records an attempt as running
// (attempts+1) before the step's Run starts, and its outputs after Run
// returns, in short transactions (an outcome and the next attempt's
// running record are one transaction and one statement). A crash, a SIGKILL, a lost
// lease or a shutdown between Run's side effect and that record makes the
// runner call Run again. Run must find and adopt what an earlier attempt
// made (stable names, "already exists" is success) and return the same
// outputs. Outputs are small JSON objects naming what the step made
// (never secrets); they are what a canceled or failed operation lists as
// existing, and what later steps read (StepContext.Output).
//
// Errors decide retries (classify): a *StepError says so itself (Retry,
// Fail, Skip); a Microsoft error (*mserr.Error) retries when transient,
// throttled or replication lag, waiting for its Retry-After when it has
// one, and otherwise fails the operation with mserr's class and remedy; an
// apperr error retries for Unavailable, Aborted, DeadlineExceeded,
// ResourceExhausted and Internal; a step timeout retries; anything
// unclassified retries as "internal error" (its text is logged, never
// shown). Retries back off exponentially (Config.BackoffBase doubling to
// BackoffMax, ±20% jitter) and stop after Step.MaxAttempts
// (Config.MaxAttempts) attempts: the operation then fails with the last
// error.
//
// The runner never sleeps: waiting for a retry (or for another runner's
// lease) snoozes the River job, freeing its worker. One run of the job
// runs steps back to back until the operation ends, must wait, or has run
// for Config.RunBudget (then it yields and continues in a new run).
//
// Exclusion. River keeps one job per unfinished operation (unique by
// args). On top, a runner takes a lease on the operation row (a random
// owner token and an expiry, renewed every third of Config.Lease while a
// step runs) in the transaction that records the attempt, and every record
// checks it under the row lock: a runner that lost its lease (a replica
// that hung past the expiry, a duplicate job after a rescue) records
// nothing and backs off. A replica that dies leaves its job running in
// River and its step running in Postgres; once the lease expires the
// janitor (a leader-only periodic job, Config.JanitorInterval) clears it,
// bumps the operation's incarnation and enqueues a job of that incarnation
// (a job of an older one ends without doing anything), which re-runs the
// unfinished step.
//
// Polling: a step that waits for something to converge returns Poll(after,
// deadline, observation): no attempt is used, the job snoozes, the
// observation is shown; at the deadline the step decides
// (StepContext.PollExpired). A failure cancels the steps after the failed
// one. Every final state is written with its operation.finished event
// (event.Notifier) in one transaction. Out, Output and RecordedOutput
// read and write typed step outputs.
//
// Cancel is cooperative: CancelOperation sets cancel_requested; the runner
// checks it at every step boundary and ends the operation canceled, its
// remaining steps canceled. When no runner holds the lease (pending, or
// waiting for a retry) Cancel ends it at once.
//
// Wait sleeps on Postgres notifications: a trigger notifies
// "dzconnect_operations" whenever an operation's version changes, one
// LISTEN connection per replica fans them out (Changes), and a waiter
// re-reads the operation on each, with a periodic re-read as a safety net.
package operation
