package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/crashpoint"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/telemetry"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// QueueOperations is the River queue of operation jobs.
const QueueOperations = "operations"

// RunArgs is an operation's River job: one per operation and
// incarnation, unique while it is not finalized. The janitor enqueues a
// job of a new incarnation when the runner of the current one died (its
// old job may still be "running" for River until River rescues it; a job
// of an older incarnation ends without doing anything).
type RunArgs struct {
	Org         uuid.UUID `json:"org"`
	ID          uuid.UUID `json:"id"`
	Incarnation int       `json:"incarnation,omitempty"`
}

// Kind implements river.JobArgs.
func (RunArgs) Kind() string { return "operation" }

// InsertOpts implements river.JobArgsWithInsertOpts: the operations queue,
// unique per operation while waiting or running (a second Insert for the
// same operation is a no-op), and many attempts: River only retries a run
// that failed outside any step (the database was unreachable); step
// failures are the runner's own business.
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOperations, MaxAttempts: 100, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

// Runner drives operations: the River worker of RunArgs jobs, and the
// janitor that takes over the operations of dead runners.
type Runner struct {
	cfg    Config
	tx     uow.Runner
	store  Store
	kinds  *Registry
	jobs   Inserter
	events event.Notifier
	log    *slog.Logger
}

// NewRunner returns a Runner. jobs enqueues the janitor's new jobs; events
// queues operation.finished in the transaction that ends an operation.
func NewRunner(cfg Config, tx uow.Runner, store Store, kinds *Registry, jobs Inserter, events event.Notifier, log *slog.Logger) *Runner {
	cfg.defaults()
	return &Runner{cfg: cfg, tx: tx, store: store, kinds: kinds, jobs: jobs, events: events, log: log.With("component", "operations")}
}

// Extension registers the runner's worker, the operations queue and the
// janitor (a leader-only periodic job, on the maintenance queue, which
// every replica works, so that busy operation workers never delay it; no
// replica works River's default queue) on the one River client
// (jobs.New).
func (r *Runner) Extension() jobs.Extension {
	ext := jobs.Extension{
		Queue: QueueOperations, MaxWorkers: r.cfg.Workers,
		// An operation's job is wanted at once (a provisioning's first step
		// waits for it): a new job's insert notification is fetched
		// after at most this since the last fetch (River's default 25 ms).
		FetchCooldown: operationsFetchCooldown,
		Register: func(w *river.Workers) {
			river.AddWorker(w, &worker{r: r})
			river.AddWorker(w, &janitorWorker{r: r})
		},
	}
	if r.cfg.JanitorInterval > 0 {
		ext.Periodic = []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(r.cfg.JanitorInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				// River's periods are at least a second.
				return JanitorArgs{}, &river.InsertOpts{Queue: jobs.QueueMaintenance,
					UniqueOpts: river.UniqueOpts{ByPeriod: max(r.cfg.JanitorInterval, time.Second)}}
			},
			// A new leader (after a crash) looks at once.
			&river.PeriodicJobOpts{ID: "operation_janitor", RunOnStart: true},
		)}
	}
	return ext
}

// operationsFetchCooldown is the operations queue's minimum gap between
// River fetches (see Extension).
const operationsFetchCooldown = 2 * time.Millisecond

type worker struct {
	river.WorkerDefaults[RunArgs]
	r *Runner
}

// Timeout bounds one run of the job (see Config.JobTimeout).
func (w *worker) Timeout(*river.Job[RunArgs]) time.Duration { return w.r.cfg.JobTimeout() }

// Work runs the operation's steps in order until it is done, must wait
// (backoff, Retry-After, another runner's lease: the job snoozes, holding
// no worker), or has used its run budget (it yields and continues in a
// new run).
func (w *worker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	return w.r.Run(ctx, job.Args)
}

// action is what advance decided.
type action struct {
	done   bool          // nothing more to do
	snooze time.Duration // come back later (when !done and run is nil)
	run    *attempt
	again  bool // decide again in a transaction of its own (advance)
}

// attempt is one step attempt to run.
type attempt struct {
	step    Step
	ordinal int
	sc      StepContext
	// snap is the operation as the attempt's running record wrote it: its
	// outcome is recorded from it, without locking and reading the row
	// again, fenced by its version and the lease (record).
	snap *snapshot
}

// snapshot is an operation as one transaction wrote it, with that
// transaction's database time and the local monotonic time just after.
type snapshot struct {
	op  Operation
	now time.Time
	at  time.Time
}

// clock is the database's time now as estimated from the snapshot: its
// time plus the local time elapsed since (at most the transaction's few
// milliseconds early; every decision made with it is relative to it).
func (s *snapshot) clock() time.Time { return s.now.Add(time.Since(s.at)) }

// Run advances one operation as far as it can now (the job's work). Each
// step attempt is: record it running (attempts+1, lease taken); run it,
// renewing the lease; record its outcome, fenced by the lease. The
// outcome of one attempt and the start of the next (or the operation's
// end) are one transaction (record), so a step costs one transaction and
// the next step runs in the same job at once; every record still commits
// before the next step's side effects. A crash after a step's record
// leaves the next step running: once the lease expires the janitor hands
// the operation to a job of a new incarnation, which re-runs it.
func (r *Runner) Run(ctx context.Context, args RunArgs) error {
	org, id := args.Org, args.ID
	owner := uuid.New() // this run's lease token
	started := time.Now()
	if err := ctx.Err(); err != nil {
		return river.JobSnooze(0) // shutting down: another replica continues at once
	}
	act, err := r.advance(ctx, args, owner, false)
	for {
		if err != nil {
			var snooze *river.JobSnoozeError
			if errors.As(err, &snooze) {
				return err
			}
			// River retries the job; the retry must not wait for this
			// run's lease (a rolled-back transaction kept it).
			r.release(ctx, org, id, owner)
			return err
		}
		if act.done {
			return nil
		}
		if act.run == nil {
			return river.JobSnooze(act.snooze)
		}
		outputs, runErr, lost := r.runStep(ctx, org, id, owner, act.run)
		if lost {
			r.log.WarnContext(ctx, "operation lease lost during a step; its outcome is not recorded", "operation", Name{org, id}.String(), "step", act.run.step.Name)
			return river.JobSnooze(r.cfg.Lease)
		}
		if ctx.Err() != nil && runErr != nil {
			// Stopped mid-step (shutdown or job timeout): the attempt's
			// outcome is unknown; leave it running for the next run.
			r.release(ctx, org, id, owner)
			return river.JobSnooze(0)
		}
		// Test-only kill points (inert unless DZCONNECT_TEST_CRASH_AT
		// names one): the step's work done but not recorded, and the
		// record committed before the next step starts.
		var se *StepError
		finished := runErr == nil || errors.As(runErr, &se) && se.skip
		if finished {
			crashpoint.Hit(crashpoint.Name(act.run.sc.Kind, act.run.step.Name, "returned"))
		}
		// Yield (continue in a new run) past the run budget, or when
		// shutting down: the next step is then not started here.
		yield := time.Since(started) > r.cfg.RunBudget || ctx.Err() != nil
		ran := act.run
		act, err = r.record(ctx, args, owner, ran, outputs, runErr, yield)
		if err == nil && finished {
			crashpoint.Hit(crashpoint.Name(ran.sc.Kind, ran.step.Name, "recorded"))
		}
		if err == nil && act.again {
			act, err = r.advance(ctx, args, owner, yield)
		}
	}
}

// advance decides the next thing to do in one short transaction, and when
// that is a step attempt, records it as running first.
func (r *Runner) advance(ctx context.Context, args RunArgs, owner uuid.UUID, yield bool) (action, error) {
	var act action
	err := r.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		act = action{}
		op, now, err := r.store.LockOperation(ctx, tx, args.Org, args.ID)
		if apperr.Is(err, apperr.NotFound) {
			act.done = true // deleted (its organization was)
			return nil
		}
		if err != nil {
			return err
		}
		act, err = r.decide(ctx, tx, args, owner, yield, false, op, now, nil, nil)
		return err
	})
	return act, err
}

// decide is advance's decision on op, locked in tx at now: the operation
// ends, waits, or its next step attempt is recorded as running.
//
// folded says decide runs in the transaction of a step's outcome (record):
// the operation's end (success or cancel: its end hook and event) is then
// left to a transaction of its own (act.again), so that a failure there
// rolls back only the end, never the recorded outcome (the step would run
// again). unwritten are the steps the outcome changed (folded only): decide
// writes them with op and the next attempt's running record in one
// statement (save), whatever it decides.
func (r *Runner) decide(ctx context.Context, tx uow.Tx, args RunArgs, owner uuid.UUID, yield, folded bool, op Operation, now time.Time,
	unwritten []StepRecord, fence *Fence) (action, error) {
	act := action{}
	var written Operation
	// save writes the unwritten steps, those given and op, when anything
	// is to be written (folded: always, op changed with the outcome).
	save := func(steps ...StepRecord) error {
		all := append(unwritten[:len(unwritten):len(unwritten)], steps...)
		if !folded && len(all) == 0 {
			return nil
		}
		var err error
		written, err = r.store.WriteOperation(ctx, tx, op, all, fence)
		return err
	}
	// release drops this run's lease (clearLease), with the unwritten
	// steps when there are any.
	release := func() error {
		if !folded && len(unwritten) == 0 {
			return r.clearLease(ctx, tx, op, owner)
		}
		if op.LeaseOwner == owner {
			op.LeaseOwner, op.LeaseExpireTime = uuid.Nil, nil
		}
		return save()
	}
	err := func() error {
		if args.Incarnation < op.Incarnation {
			act.done = true // superseded by the janitor: a newer job runs it
			return release()
		}
		if op.LeaseOwner != owner && leaseActive(op, now) {
			act.snooze = op.LeaseExpireTime.Sub(now) + 100*time.Millisecond
			return save()
		}
		if op.Done() {
			act.done = true
			return release()
		}
		if op.CancelRequested && folded {
			act.again = true
			return save()
		}
		if op.CancelRequested {
			act.done = true
			changed, err := cancelNow(&op, now)
			if err != nil {
				return err
			}
			_, err = writeFinal(ctx, tx, r.store, r.kinds, r.events, op, changed, fence)
			return err
		}
		k, ok := r.kinds.Get(op.Kind)
		if !ok {
			// Another version of dzconnect (a rolling upgrade) may know it.
			r.log.WarnContext(ctx, "operation of a kind this replica does not know; retrying later", "operation", op.Name(), "kind", op.Kind)
			act.snooze = time.Minute
			return release()
		}
		if len(k.Steps) != len(op.Steps) {
			return fmt.Errorf("operation %s: kind %s has %d steps, the operation %d", op.Name(), op.Kind, len(k.Steps), len(op.Steps))
		}
		next := -1
		for i, st := range op.Steps {
			if st.State != StepSucceeded && st.State != StepSkipped {
				next = i
				break
			}
		}
		// Steps that have nothing to do by their SkipIf are recorded
		// skipped here, with this decision (only in a running operation,
		// for a step no attempt started).
		for next >= 0 && op.State == StateRunning && k.Steps[next].SkipIf != nil && op.Steps[next].State == StepPending &&
			op.Steps[next].Attempts == 0 && k.Steps[next].SkipIf(stepContext(r, op, next, now)) {
			st := op.Steps[next]
			st.State, st.StartTime, st.EndTime, st.NextAttemptTime = StepSkipped, &now, &now, nil
			op.Steps[next] = st
			op.StepsDone++
			unwritten = append(unwritten[:len(unwritten):len(unwritten)], st)
			if next++; next == len(op.Steps) {
				next = -1
			}
		}
		// end writes op succeeded (its result, end hook and event) in tx.
		end := func(ctx context.Context, tx uow.Tx, op Operation) error {
			if err := r.succeed(ctx, &op, k, now); err != nil {
				return err
			}
			_, err := writeFinal(ctx, tx, r.store, r.kinds, r.events, op, unwritten, fence)
			return err
		}
		if next < 0 && folded {
			// The last step's outcome and the operation's end in one
			// transaction, the end in a savepoint: a failing end (its hook,
			// its event) is rolled back alone, the outcome is written
			// without it, and the end is made again in a transaction of
			// its own (act.again), as when the runner cannot nest.
			if sp, ok := r.tx.(uow.Savepointer); ok {
				err := sp.Savepoint(ctx, tx, func(ctx context.Context, tx uow.Tx) error { return end(ctx, tx, op) })
				if err == nil {
					act.done = true
					return nil
				}
				if ctx.Err() != nil || errors.Is(err, ErrFenced) {
					return err
				}
				r.log.WarnContext(ctx, "ending an operation with its last step's record failed; ending it on its own", "operation", op.Name(), "error", err)
			}
			act.again = true
			return save()
		}
		if next < 0 {
			act.done = true
			return end(ctx, tx, op)
		}
		st := op.Steps[next]
		if st.Name != k.Steps[next].Name {
			return fmt.Errorf("operation %s: step %d is %q, the kind's %q", op.Name(), next, st.Name, k.Steps[next].Name)
		}
		if st.State == StepFailed || st.State == StepCanceled {
			return fmt.Errorf("operation %s is %s with step %s %s", op.Name(), op.State, st.Name, st.State)
		}
		if st.State == StepPending && st.NextAttemptTime != nil && st.NextAttemptTime.After(now) {
			act.snooze = st.NextAttemptTime.Sub(now)
			return release()
		}
		if yield {
			return release() // snooze 0: continue in a new run
		}
		// Record the attempt before the step's code runs.
		if !st.State.CanTransition(StepRunning) || (op.State != StateRunning && !op.State.CanTransition(StateRunning)) {
			return fmt.Errorf("operation %s: cannot start step %s (%s, operation %s)", op.Name(), st.Name, st.State, op.State)
		}
		st.State, st.Attempts, st.NextAttemptTime = StepRunning, st.Attempts+1, nil
		if st.StartTime == nil {
			st.StartTime = &now
		}
		until := now.Add(r.cfg.Lease)
		op.State, op.LeaseOwner, op.LeaseExpireTime = StateRunning, owner, &until
		if err := save(st); err != nil {
			return err
		}
		op.Steps[next] = st
		sc := stepContext(r, op, next, now)
		sc.onRecord = new([]RecordFunc) // the attempt's RecordWith writes
		snap := op
		snap.Steps, snap.Version = slices.Clone(op.Steps), written.Version
		act.run = &attempt{step: k.Steps[next], ordinal: next, sc: sc, snap: &snapshot{op: snap, now: now, at: time.Now()}}
		return nil
	}()
	return act, err
}

// stepContext is the context of op's step at ordinal, as decided at now.
func stepContext(r *Runner, op Operation, ordinal int, now time.Time) StepContext {
	st := op.Steps[ordinal]
	outputs := map[string]json.RawMessage{}
	for _, s := range op.Steps[:ordinal] {
		outputs[s.Name] = s.Outputs
	}
	return StepContext{
		Org: op.Org, Operation: op.ID, Kind: op.Kind, Target: op.Target, Params: op.Params, Step: st.Name,
		Attempt: st.Attempts, Outputs: outputs,
		Log:   r.log.With("operation", op.Name(), "step", st.Name, "attempt", st.Attempts),
		Polls: st.Polls, PollDeadline: st.PollDeadline,
		PollExpired: st.PollDeadline != nil && !now.Before(*st.PollDeadline),
	}
}

// succeed ends op as succeeded, with the kind's result.
func (r *Runner) succeed(ctx context.Context, op *Operation, k *Kind, now time.Time) error {
	if !op.State.CanTransition(StateSucceeded) {
		return fmt.Errorf("operation %s: %s -> succeeded not allowed", op.Name(), op.State)
	}
	op.State, op.EndTime = StateSucceeded, &now
	if k.Result == nil {
		return nil
	}
	outputs := map[string]json.RawMessage{}
	for _, s := range op.Steps {
		outputs[s.Name] = s.Outputs
	}
	res, err := k.Result(StepContext{Org: op.Org, Operation: op.ID, Kind: op.Kind, Target: op.Target, Params: op.Params, Outputs: outputs,
		Log: r.log.With("operation", op.Name())})
	if err != nil {
		return fmt.Errorf("operation %s: building its result: %w", op.Name(), err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("operation %s: encoding its result: %w", op.Name(), err)
	}
	op.Result = b
	return nil
}

func (r *Runner) clearLease(ctx context.Context, tx uow.Tx, op Operation, owner uuid.UUID) error {
	if op.LeaseOwner != owner {
		return nil
	}
	return r.store.SetLease(ctx, tx, op.Org, op.ID, uuid.Nil, nil)
}

// release drops this run's lease if it still holds it (best effort: an
// unreleased lease only delays the next run until it expires).
func (r *Runner) release(ctx context.Context, org, id, owner uuid.UUID) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := r.tx.InTx(cctx, func(ctx context.Context, tx uow.Tx) error {
		op, _, err := r.store.LockOperation(ctx, tx, org, id)
		if err != nil {
			return err
		}
		return r.clearLease(ctx, tx, op, owner)
	})
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		r.log.WarnContext(ctx, "releasing an operation lease", "operation", Name{org, id}.String(), "error", err)
	}
}

// runStep runs one attempt with its timeout while renewing the lease
// every third of it. lost reports that the lease could not be renewed (the
// step's context was canceled then): its outcome must not be recorded.
func (r *Runner) runStep(ctx context.Context, org, id, owner uuid.UUID, a *attempt) (out Outputs, err error, lost bool) {
	timeout := r.cfg.StepTimeout
	if a.step.Timeout > 0 {
		timeout = min(a.step.Timeout, timeout)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The attempt's span, under the job's (docs/observability.md).
	sctx, span := telemetry.Child(sctx, "operation.step", trace.WithAttributes(
		attribute.String("operation.name", Name{org, id}.String()), attribute.String("operation.kind", a.sc.Kind),
		attribute.String("operation.step", a.step.Name), attribute.Int("operation.attempt", a.sc.Attempt)))
	defer func() {
		if err != nil {
			telemetry.Fail(span, "step did not succeed")
		}
		span.End()
	}()
	var lostMu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		renewed := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ok, rerr := r.store.RenewLease(sctx, r.tx.Conn(), org, id, owner, r.cfg.Lease)
			switch {
			case rerr == nil && ok:
				renewed = time.Now()
				continue
			case rerr != nil && time.Since(renewed) < r.cfg.Lease*2/3:
				continue // a hiccup: try again before the lease runs out
			}
			lostMu.Lock()
			lost = true
			lostMu.Unlock()
			cancel()
			return
		}
	}()
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("step panicked: %v", p)
			}
		}()
		out, err = a.step.Run(sctx, a.sc)
	}()
	close(stop)
	wg.Wait()
	lostMu.Lock()
	defer lostMu.Unlock()
	return out, err, lost
}

// record writes an attempt's outcome, fenced by the lease: a runner that
// lost its lease records nothing.
func (r *Runner) record(ctx context.Context, args RunArgs, owner uuid.UUID, a *attempt, outputs Outputs, runErr error, yield bool) (action, error) {
	org, id := args.Org, args.ID
	out := outcome{err: runErr, expiredLook: a.sc.PollExpired}
	if runErr != nil {
		out.v = classify(runErr)
	} else {
		out.outputs = json.RawMessage(`{}`)
		if len(outputs) > 0 {
			b, err := json.Marshal(outputs)
			if err != nil {
				out.err = fmt.Errorf("encoding the outputs of step %s: %w", a.step.Name, err)
				out.v = verdict{failure: Failure{Code: codeName(apperr.Internal), Reason: "INTERNAL", Message: "the step's outputs could not be encoded"}}
			}
			out.outputs = b
		}
	}
	maxAttempts := a.step.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = r.cfg.MaxAttempts
	}
	name := Name{org, id}.String()
	// The step's own writes (RecordWith), made with its success.
	var hooks []RecordFunc
	if runErr == nil && out.err == nil && a.sc.onRecord != nil {
		hooks = *a.sc.onRecord
	}
	var act action
	var hookErr error
	var logRecord func() // what the record wrote, logged once it committed
	// body records the outcome on op as of now (fence: without the row
	// lock, see below).
	body := func(ctx context.Context, tx uow.Tx, op Operation, now time.Time, fence *Fence) error {
		act, hookErr, logRecord = action{}, nil, nil
		for _, h := range hooks {
			if err := h(ctx, tx); err != nil {
				hookErr = err
				return err
			}
		}
		changed, err := r.settle(&op, a.ordinal, maxAttempts, out, now)
		if err != nil {
			return err
		}
		st := op.Steps[a.ordinal]
		switch {
		case op.State == StateFailed:
			logRecord = func() {
				r.log.WarnContext(ctx, "operation failed", "operation", name, "step", st.Name, "attempts", st.Attempts,
					"reason", op.Error.Reason, "error", out.err)
			}
		case out.v.poll:
			logRecord = func() {
				r.log.DebugContext(ctx, "operation step polled", "operation", name, "step", st.Name, "polls", st.Polls,
					"observation", st.Observation, "next_poll", st.NextAttemptTime)
			}
		case out.err != nil && st.State == StepPending:
			logRecord = func() {
				r.log.WarnContext(ctx, "operation step failed; retrying", "operation", name, "step", st.Name, "attempt", st.Attempts,
					"reason", st.LastError.Reason, "next_attempt", st.NextAttemptTime, "error", out.err)
			}
		}
		if op.Done() {
			act.done = true
			_, err = writeFinal(ctx, tx, r.store, r.kinds, r.events, op, changed, fence)
			return err
		}
		// The next decision in the same transaction, written with this
		// outcome in one statement: the next step's running record (or
		// the operation's end) commits with it, still before the next
		// step's side effects.
		act, err = r.decide(ctx, tx, args, owner, yield, true, op, now, changed, fence)
		return err
	}
	// First from the attempt's snapshot, without locking and reading the
	// row: every write of that transaction is fenced by the snapshot's
	// version and this run's lease, so it commits only if nothing changed
	// the operation since (a cancel request, the janitor, another
	// runner); otherwise it is rolled back whole (the step's RecordWith
	// writes with it) and the outcome recorded under the lock below.
	err := ErrFenced
	if a.snap != nil {
		op := a.snap.op
		op.Steps = slices.Clone(op.Steps)
		err = r.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
			return body(ctx, tx, op, a.snap.clock(), &Fence{Version: op.Version, Owner: owner})
		})
	}
	if errors.Is(err, ErrFenced) {
		err = r.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
			act, hookErr, logRecord = action{}, nil, nil
			op, now, err := r.store.LockOperation(ctx, tx, org, id)
			if err != nil {
				return err
			}
			if op.LeaseOwner != owner {
				return errLeaseLost
			}
			return body(ctx, tx, op, now, nil)
		})
	}
	if err == nil && logRecord != nil {
		logRecord()
	}
	if hookErr != nil {
		// The step's own writes failed: nothing of that transaction was
		// kept, and the attempt is recorded as failed with their error
		// (its side effects are made again by the next attempt, as after
		// any failure; the step is idempotent).
		failed := *a
		failed.sc.onRecord = nil
		return r.record(ctx, args, owner, &failed, nil, fmt.Errorf("recording step %s: %w", a.step.Name, hookErr), yield)
	}
	if apperr.Is(err, apperr.NotFound) {
		return action{done: true}, nil // deleted meanwhile (with its organization)
	}
	if errors.Is(err, errLeaseLost) {
		r.log.WarnContext(ctx, "operation lease lost before recording a step; not recorded", "operation", name, "step", a.step.Name)
		return action{}, river.JobSnooze(r.cfg.Lease)
	}
	return act, err
}

// outcome is how one attempt ended.
type outcome struct {
	err     error           // nil: succeeded with outputs
	v       verdict         // when err != nil
	outputs json.RawMessage // when err == nil
	// expiredLook: the attempt ran with StepContext.PollExpired set, i.e.
	// the step had its chance to decide at its deadline.
	expiredLook bool
}

// settle applies an attempt's outcome to op, whose step at ordinal is
// running, at now: the record half of the state machines (pure; record
// writes what it changed). Success records the outputs; Skip skips; a
// poll makes the step pending until its next look without consuming the
// attempt (or fails it past its deadline); a retryable error makes it
// pending until its backoff or Retry-After while attempts remain;
// anything else fails the step and the operation, and cancels the steps
// after it (failNow). The lease, when kept, is extended. It returns the
// steps it changed.
func (r *Runner) settle(op *Operation, ordinal, maxAttempts int, out outcome, now time.Time) ([]StepRecord, error) {
	if ordinal < 0 || ordinal >= len(op.Steps) {
		return nil, fmt.Errorf("operation %s: no step %d", op.Name(), ordinal)
	}
	st := &op.Steps[ordinal]
	if st.State != StepRunning {
		return nil, fmt.Errorf("operation %s: recording step %s, which is %s", op.Name(), st.Name, st.State)
	}
	until := now.Add(r.cfg.Lease)
	op.LeaseExpireTime = &until
	v := out.v
	switch {
	case out.err == nil:
		st.State, st.EndTime, st.Outputs = StepSucceeded, &now, out.outputs
		op.StepsDone++
		return []StepRecord{*st}, nil
	case v.skip:
		st.State, st.EndTime = StepSkipped, &now
		op.StepsDone++
		return []StepRecord{*st}, nil
	case v.poll:
		deadline := v.deadline
		if st.PollDeadline != nil {
			deadline = *st.PollDeadline // the first poll's deadline holds
		} else if deadline.IsZero() {
			deadline = now.Add(r.cfg.PollWindow)
		}
		st.Observation = v.failure.Message
		// Past the deadline, a step that already had its look at the
		// deadline (PollExpired) and still polls fails. One whose deadline
		// passed while it ran (a slow attempt, a busy machine) gets that
		// look now: it must be allowed to decide, never failed unasked.
		if !now.Before(deadline) && out.expiredLook {
			return failNow(op, ordinal, Failure{Code: codeName(apperr.DeadlineExceeded), Reason: "POLL_DEADLINE",
				Message: "still not done at its deadline: " + v.failure.Message}, now)
		}
		next := now.Add(max(v.retryAfter, r.cfg.PollMin))
		if next.After(deadline) {
			next = deadline // the step decides at its deadline
		}
		if next.Before(now) {
			next = now
		}
		st.State, st.NextAttemptTime, st.PollDeadline = StepPending, &next, &deadline
		st.Attempts-- // a poll is not an attempt
		st.Polls++
		return []StepRecord{*st}, nil
	}
	f := v.failure
	st.LastError = &f
	if v.retryable && v.lag {
		// Replication lag: bounded by a window from the step's first
		// start, not by its attempts (reference section 5), backoff
		// capped at LagBackoffMax and never before Retry-After.
		start := now
		if st.StartTime != nil {
			start = *st.StartTime
		}
		end := start.Add(r.cfg.LagWindow)
		if now.Before(end) {
			next := now.Add(r.lagDelay(st.Attempts, v.retryAfter))
			if next.After(end) && v.retryAfter <= 0 {
				next = end // one last look at the window's end
			}
			st.State, st.NextAttemptTime = StepPending, &next
			return []StepRecord{*st}, nil
		}
		f.Message = fmt.Sprintf("still not replicated %s after the step started: %s", r.cfg.LagWindow, f.Message)
		st.LastError = &f
		return failNow(op, ordinal, f, now)
	}
	if v.retryable && st.Attempts < maxAttempts {
		next := now.Add(r.delay(st.Attempts, v.retryAfter))
		st.State, st.NextAttemptTime = StepPending, &next
		return []StepRecord{*st}, nil
	}
	return failNow(op, ordinal, f, now)
}

var errLeaseLost = errors.New("operation lease lost")

// delay is the wait before the next attempt: Retry-After when the error
// carried one (never less: the next attempt is no earlier than Microsoft
// asked), else exponential backoff with ±20% jitter.
func (r *Runner) delay(attempts int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	return backoff(r.cfg.BackoffBase, r.cfg.BackoffMax, attempts)
}

// lagDelay is the wait before the next look after replication lag:
// backoff from BackoffBase capped at LagBackoffMax, and never less than a
// Retry-After the answer carried.
func (r *Runner) lagDelay(attempts int, retryAfter time.Duration) time.Duration {
	return max(retryAfter, backoff(r.cfg.BackoffBase, r.cfg.LagBackoffMax, attempts))
}

// backoff doubles base per attempt up to ceiling, with ±20% jitter.
func backoff(base, ceiling time.Duration, attempts int) time.Duration {
	d := base
	for i := 1; i < attempts && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
