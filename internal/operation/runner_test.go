package operation_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/testsupport/pgtest"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/webhook"
	"github.com/dropzoneai/dzconnect/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// steps is the test kind's controller: each of its steps records its
// calls and can block until released, fail transiently N times (with a
// Retry-After), or fail permanently.
type steps struct {
	mu        sync.Mutex
	calls     []string                 // "op/step#attempt", in call order
	gates     map[string]chan struct{} // step -> closed to let it finish
	entered   map[string]chan struct{} // step -> signalled when an attempt starts
	transient map[string]int           // step -> failures left
	throttle  time.Duration            // Retry-After of transient failures (0: backoff)
	permanent map[string]error
	ignoreCtx bool // a gated step waits for its gate even when canceled (a hung replica)
	// dieOnCancel: a gated step whose context is canceled stops counting as
	// running and never returns (its replica died: no cleanup, no record).
	dieOnCancel bool
	dead        chan struct{}
	running     map[uuid.UUID]int
	overlap     atomic.Int32 // steps of one operation running at once, beyond one
	times       map[string][]time.Time
}

func newSteps() *steps {
	return &steps{gates: map[string]chan struct{}{}, entered: map[string]chan struct{}{}, transient: map[string]int{},
		permanent: map[string]error{}, running: map[uuid.UUID]int{}, times: map[string][]time.Time{}}
}

func (s *steps) gate(step string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	s.gates[step] = g
	s.entered[step] = make(chan struct{}, 10)
	return sync.OnceFunc(func() { close(g) })
}

func (s *steps) kind() operation.Kind {
	k := operation.Kind{Name: "test.steps", Result: func(sc operation.StepContext) (any, error) {
		var three map[string]any
		_, err := sc.Output("three", &three)
		return map[string]any{"last": three["object_id"]}, err
	}}
	for _, name := range []string{"one", "two", "three"} {
		k.Steps = append(k.Steps, operation.Step{Name: name, Run: func(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
			return s.run(ctx, name, sc)
		}})
	}
	return k
}

func (s *steps) run(ctx context.Context, name string, sc operation.StepContext) (operation.Outputs, error) {
	s.mu.Lock()
	s.running[sc.Operation]++
	if s.running[sc.Operation] > 1 {
		s.overlap.Add(1)
	}
	s.calls = append(s.calls, sc.Operation.String()[:8]+"/"+name)
	s.times[sc.Operation.String()+"/"+name] = append(s.times[sc.Operation.String()+"/"+name], time.Now())
	g, entered := s.gates[name], s.entered[name]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running[sc.Operation]--
		s.mu.Unlock()
	}()
	if entered != nil {
		entered <- struct{}{}
	}
	if g != nil {
		switch {
		case s.ignoreCtx:
			<-g
		case s.dieOnCancel:
			select {
			case <-g:
			case <-ctx.Done():
				s.mu.Lock()
				s.running[sc.Operation]--
				s.mu.Unlock()
				<-s.dead // until the test ends
				s.mu.Lock()
				s.running[sc.Operation]++ // the deferred decrement follows
				s.mu.Unlock()
				return nil, ctx.Err()
			}
		default:
			select {
			case <-g:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.permanent[name]; err != nil {
		return nil, err
	}
	if s.transient[name] > 0 {
		s.transient[name]--
		return nil, &mserr.Error{Service: "graph", Operation: "POST /applications", Status: 429, Code: "TooManyRequests",
			Class: mserr.ClassThrottled, Message: "slow down", RetryAfter: s.throttle}
	}
	return operation.Outputs{"object_id": name + "-" + sc.Operation.String()[:8], "attempt": sc.Attempt}, nil
}

// attempts returns the start times of one operation's step.
func (s *steps) attempts(op uuid.UUID, name string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times[op.String()+"/"+name]...)
}

// env is one test's database, organization, registry and service.
type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	db     *postgres.DB
	org    uuid.UUID
	kinds  *operation.Registry
	cfg    operation.Config
	svc    *operation.Service
	ins    *jobs.Inserter
	events *recorder
	steps  *steps
}

// recorder is the event.Notifier of the tests: it passes events to the
// real one (webhook deliveries and their jobs) and remembers them; failures > 0 makes
// the next Notify calls fail (the final transaction must roll back).
type recorder struct {
	inner    event.Notifier
	mu       sync.Mutex
	events   []event.Event
	failures int
}

func (r *recorder) Notify(ctx context.Context, tx uow.Tx, org uuid.UUID, ev event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !tx.Transactional() {
		return errors.New("event queued outside a transaction")
	}
	if r.failures > 0 {
		r.failures--
		return errors.New("outbox unavailable")
	}
	if err := r.inner.Notify(ctx, tx, org, ev); err != nil {
		return err
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) of(op uuid.UUID) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, ev := range r.events {
		if strings.HasSuffix(ev.Operation, op.String()) {
			out = append(out, ev)
		}
	}
	return out
}

func newEnv(t *testing.T, cfg operation.Config) *env {
	t.Helper()
	_, pool := pgtest.NewDB(t, migrations.FS, func(ctx context.Context, url string) error {
		return postgres.Migrate(ctx, url, slog.New(slog.DiscardHandler))
	})
	db := postgres.New(pool)
	ctx := context.Background()
	ins, err := jobs.NewInserter(pool)
	if err != nil {
		t.Fatal(err)
	}
	o, err := organization.NewService(db, db, db, db, jobs.NewSecretGC(ins)).
		CreateOrganization(ctx, organization.Organization{ID: uuid.Must(uuid.NewV7()), DisplayName: "ops"}, idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, db: db, org: o.ID, kinds: operation.NewRegistry(), cfg: cfg, steps: newSteps()}
	e.kinds.MustRegister(e.steps.kind())
	e.steps.dead = make(chan struct{})
	t.Cleanup(func() { close(e.steps.dead) })
	listener := postgres.NewOperationListener(db, slog.New(slog.DiscardHandler))
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); listener.Run(lctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.ins = ins
	e.events = &recorder{inner: webhook.NewNotifier(db, ins, 0)}
	e.svc = operation.NewService(cfg, db, db, e.kinds, ins, listener, db, e.events)
	return e
}

var testLog = slog.New(slog.DiscardHandler)

// replica starts a River client running operations (one "replica"),
// with the janitor when it may become the leader.
func (e *env) replica(workers int, rescueAfter time.Duration) *river.Client[pgx.Tx] {
	e.t.Helper()
	return e.replicaWith(e.cfg, workers, rescueAfter, true)
}

func (e *env) replicaWith(cfg operation.Config, workers int, rescueAfter time.Duration, leader bool) *river.Client[pgx.Tx] {
	e.t.Helper()
	runner := operation.NewRunner(cfg, e.db, e.db, e.kinds, e.ins, e.events, testLog)
	ext := runner.Extension()
	w := river.NewWorkers()
	ext.Register(w)
	rc := &river.Config{
		Logger: testLog, Queues: map[string]river.QueueConfig{operation.QueueOperations: {MaxWorkers: workers}, jobs.QueueMaintenance: {MaxWorkers: 1}},
		Workers: w, RescueStuckJobsAfter: rescueAfter, JobTimeout: rescueAfter / 2, FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		LeaderElectionDisabled: !leader,
	}
	if leader {
		rc.PeriodicJobs = ext.Periodic
	}
	c, err := river.NewClient(riverpgxv5.New(e.pool), rc)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.StopAndCancel(ctx)
	})
	return c
}

func (e *env) start() operation.Operation {
	e.t.Helper()
	var op operation.Operation
	err := e.db.InTx(context.Background(), func(ctx context.Context, tx uow.Tx) error {
		var err error
		op, err = e.svc.Start(ctx, tx, operation.Spec{Org: e.org, Kind: "test.steps", Target: "organizations/" + e.org.String() + "/tenants/x",
			Params: map[string]any{"display_name": "Dropzone AI"}, RequestID: uuid.New()})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return op
}

// wait waits for the operation to end (through Wait: no polling).
func (e *env) wait(id uuid.UUID) operation.Operation {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		op, err := e.svc.Wait(context.Background(), e.org, id, 10*time.Second, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		if op.Done() {
			return op
		}
	}
	e.t.Fatal("operation did not finish")
	return operation.Operation{}
}

func (e *env) get(id uuid.UUID) operation.Operation {
	e.t.Helper()
	op, err := e.svc.Get(context.Background(), e.org, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return op
}

func recv(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("step did not start")
	}
}

func stepStates(op operation.Operation) []operation.StepState {
	var out []operation.StepState
	for _, s := range op.Steps {
		out = append(out, s.State)
	}
	return out
}

func TestStepsRunInOrderEachRecordedBeforeTheNext(t *testing.T) {
	e := newEnv(t, operation.Config{})
	release := e.steps.gate("two")
	e.replica(2, time.Hour)
	op := e.start()
	if op.State != operation.StatePending || len(op.Steps) != 3 || op.StepsTotal != 3 {
		t.Fatalf("started: %+v", op)
	}
	recv(t, e.steps.entered["two"])
	mid := e.get(op.ID)
	if mid.State != operation.StateRunning || mid.StepsDone != 1 || mid.Steps[0].State != operation.StepSucceeded ||
		mid.Steps[1].State != operation.StepRunning || mid.Steps[1].Attempts != 1 || mid.Steps[2].State != operation.StepPending {
		t.Fatalf("while step two runs: %v", stepStates(mid))
	}
	if string(mid.Steps[0].Outputs) == "{}" {
		t.Fatal("step one's outputs not recorded before step two started")
	}
	release()
	done := e.wait(op.ID)
	if done.State != operation.StateSucceeded || done.StepsDone != 3 || done.Percent() != 100 || done.EndTime == nil {
		t.Fatalf("done: %+v", done)
	}
	if got := string(done.Result); got != `{"last": "three-`+op.ID.String()[:8]+`"}` && got != `{"last":"three-`+op.ID.String()[:8]+`"}` {
		t.Fatalf("result %s", got)
	}
	want := []string{op.ID.String()[:8] + "/one", op.ID.String()[:8] + "/two", op.ID.String()[:8] + "/three"}
	if len(e.steps.calls) != 3 || e.steps.calls[0] != want[0] || e.steps.calls[1] != want[1] || e.steps.calls[2] != want[2] {
		t.Fatalf("calls %v", e.steps.calls)
	}
}

func TestTransientFailureRetriedWithBackoff(t *testing.T) {
	e := newEnv(t, operation.Config{BackoffBase: 100 * time.Millisecond})
	e.steps.transient["two"] = 2
	e.replica(2, time.Hour)
	op := e.wait(e.start().ID)
	if op.State != operation.StateSucceeded {
		t.Fatalf("state %s", op.State)
	}
	two := op.Steps[1]
	if two.Attempts != 3 || two.LastError == nil || two.LastError.Reason != "throttled" || two.LastError.Code != "RESOURCE_EXHAUSTED" {
		t.Fatalf("step two: %+v %+v", two, two.LastError)
	}
	ts := e.steps.attempts(op.ID, "two")
	// Backoff 100ms then 200ms, each with ±20% jitter.
	if len(ts) != 3 || ts[1].Sub(ts[0]) < 80*time.Millisecond || ts[2].Sub(ts[1]) < 160*time.Millisecond {
		t.Fatalf("attempt times %v", ts)
	}
}

func TestRetryAfterHonouredBySnoozing(t *testing.T) {
	e := newEnv(t, operation.Config{})
	e.steps.transient["two"] = 1
	e.steps.throttle = 2 * time.Second
	c := e.replica(1, time.Hour) // one worker: a second operation runs only if the first does not hold it while waiting
	snoozed, stop := c.Subscribe(river.EventKindJobSnoozed)
	defer stop()
	first := e.start()
	op := first
	for op.Steps[1].NextAttemptTime == nil && !op.Done() {
		var err error
		if op, err = e.svc.Wait(context.Background(), e.org, first.ID, 10*time.Second, op.Version); err != nil {
			t.Fatal(err)
		}
	}
	next := op.Steps[1].NextAttemptTime
	if op.Steps[1].State != operation.StepPending || next == nil || op.Steps[1].LastError.Reason != "throttled" {
		t.Fatalf("after the throttled attempt: %v", stepStates(op))
	}
	failed := e.steps.attempts(first.ID, "two")[0]
	if d := next.Sub(failed); d < 1900*time.Millisecond {
		t.Fatalf("next attempt only %v after the throttled one", d)
	}
	// The job was snoozed until the Retry-After (its worker released), not
	// kept sleeping.
	select {
	case ev := <-snoozed:
		if d := ev.Job.ScheduledAt.Sub(failed); d < 1900*time.Millisecond {
			t.Fatalf("job snoozed only until %v after the throttled attempt", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job was not snoozed")
	}
	// The only worker is free: a second operation runs to the end meanwhile.
	second := e.wait(e.start().ID)
	if second.State != operation.StateSucceeded || !time.Now().Before(*next) {
		t.Fatalf("second operation %s, finished after the first's Retry-After", second.State)
	}
	done := e.wait(first.ID)
	ts := e.steps.attempts(first.ID, "two")
	if done.State != operation.StateSucceeded || len(ts) != 2 || ts[1].Before(*next) {
		t.Fatalf("first: %s, step two attempts at %v, next attempt %v", done.State, ts, next)
	}
}

func TestPermanentFailureEndsFailedWithRemedy(t *testing.T) {
	e := newEnv(t, operation.Config{})
	e.steps.permanent["two"] = &mserr.Error{Service: "graph", Operation: "POST /servicePrincipals", Status: 403,
		Code: "Authorization_RequestDenied", Class: mserr.ClassPermissionMissing, Message: "Insufficient privileges",
		Remedy: "Grant the provisioner Application.ReadWrite.OwnedBy and consent again."}
	e.replica(2, time.Hour)
	op := e.wait(e.start().ID)
	if op.State != operation.StateFailed || op.Error == nil || op.Error.Step != "two" || op.Error.Reason != "permission-missing" ||
		op.Error.Code != "PERMISSION_DENIED" || op.Error.Remedy == "" {
		t.Fatalf("failed operation: %s %+v", op.State, op.Error)
	}
	// The steps after the failed one were not run: canceled.
	if got := stepStates(op); got[0] != operation.StepSucceeded || got[1] != operation.StepFailed || got[2] != operation.StepCanceled ||
		op.Steps[1].Attempts != 1 || e.steps.attempts(op.ID, "three") != nil || op.Steps[2].EndTime == nil || op.StepsDone != 1 {
		t.Fatalf("steps %v", got)
	}
	evs := e.events.of(op.ID)
	if len(evs) != 1 || evs[0].Type != event.OperationFinished || evs[0].State != "failed" || evs[0].Error == nil ||
		evs[0].Error.Reason != "permission-missing" || evs[0].Error.Remedy == "" || evs[0].Error.Step != "two" ||
		evs[0].OperationKind != "test.steps" || evs[0].Target != op.Target || evs[0].Operation != op.Name() {
		t.Fatalf("events %+v", evs)
	}
}

func TestCancelStopsAtTheNextBoundaryAndListsOutputs(t *testing.T) {
	e := newEnv(t, operation.Config{})
	release := e.steps.gate("two")
	e.replica(2, time.Hour)
	op := e.start()
	recv(t, e.steps.entered["two"])
	c, err := e.svc.Cancel(context.Background(), e.org, op.ID)
	if err != nil || c.State != operation.StateRunning || !c.CancelRequested {
		t.Fatalf("cancel while a step runs: %s %v %v", c.State, c.CancelRequested, err)
	}
	release()
	done := e.wait(op.ID)
	if got := stepStates(done); done.State != operation.StateCanceled || got[0] != operation.StepSucceeded ||
		got[1] != operation.StepSucceeded || got[2] != operation.StepCanceled {
		t.Fatalf("canceled: %s %v", done.State, got)
	}
	if outs := done.Outputs(); len(outs) != 2 || outs["one"] == nil || outs["two"] == nil {
		t.Fatalf("outputs %v", outs)
	}
	if e.steps.attempts(op.ID, "three") != nil {
		t.Fatal("step three ran after the cancel")
	}
	again, err := e.svc.Cancel(context.Background(), e.org, op.ID)
	if err != nil || again.State != operation.StateCanceled || again.Version != done.Version {
		t.Fatalf("cancel again: %v %v", again.State, err)
	}
	// Nothing runs this one (no replica): it is canceled at once, every
	// step canceled.
	idle := newEnv(t, operation.Config{})
	pending := idle.start()
	c, err = idle.svc.Cancel(context.Background(), idle.org, pending.ID)
	if err != nil || c.State != operation.StateCanceled || c.EndTime == nil {
		t.Fatalf("cancel pending: %v %v", c.State, err)
	}
	for _, s := range idle.get(pending.ID).Steps {
		if s.State != operation.StepCanceled {
			t.Fatalf("pending operation's step %s is %s", s.Name, s.State)
		}
	}
}

func TestCancelFinishedOperationIsFailedPrecondition(t *testing.T) {
	e := newEnv(t, operation.Config{})
	e.replica(2, time.Hour)
	op := e.wait(e.start().ID)
	_, err := e.svc.Cancel(context.Background(), e.org, op.ID)
	if ae, ok := apperr.From(err); !ok || ae.Kind != apperr.FailedPrecondition || ae.Reason != "OPERATION_DONE" {
		t.Fatalf("cancel succeeded operation: %v", err)
	}
	if _, err := e.svc.Cancel(context.Background(), uuid.New(), op.ID); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("other organization: %v", err)
	}
	if _, err := e.svc.Get(context.Background(), uuid.New(), op.ID); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("other organization: %v", err)
	}
}

func TestWaitWakesOnNotifyAndTimesOut(t *testing.T) {
	e := newEnv(t, operation.Config{WaitRecheck: time.Hour}) // only NOTIFY can wake a waiter
	release := e.steps.gate("two")
	e.replica(2, time.Hour)
	op := e.start()
	recv(t, e.steps.entered["two"])
	t0 := time.Now()
	w, err := e.svc.Wait(context.Background(), e.org, op.ID, 300*time.Millisecond, 0)
	if err != nil || w.Done() || time.Since(t0) < 300*time.Millisecond || time.Since(t0) > 5*time.Second {
		t.Fatalf("timed-out wait: done=%v after %v, %v", w.Done(), time.Since(t0), err)
	}
	type res struct {
		op  operation.Operation
		at  time.Time
		err error
	}
	waiters := make(chan res, 20)
	for range 20 { // many waiters share the one listening connection
		go func() {
			o, err := e.svc.Wait(context.Background(), e.org, op.ID, 30*time.Second, 0)
			waiters <- res{o, time.Now(), err}
		}()
	}
	release()
	for range 20 {
		r := <-waiters
		if r.err != nil || !r.op.Done() || r.op.EndTime == nil {
			t.Fatalf("wait: %v %v", r.op.State, r.err)
		}
		if lag := r.at.Sub(*r.op.EndTime); lag > 2*time.Second {
			t.Fatalf("waiter woke %v after the end", lag)
		}
	}
	// With an etag, a wait returns on any change.
	e2 := newEnv(t, operation.Config{WaitRecheck: time.Hour})
	rel2 := e2.steps.gate("one")
	e2.replica(1, time.Hour)
	op2 := e2.start()
	recv(t, e2.steps.entered["one"])
	cur := e2.get(op2.ID)
	got := make(chan operation.Operation, 1)
	go func() {
		o, _ := e2.svc.Wait(context.Background(), e2.org, op2.ID, 30*time.Second, cur.Version)
		got <- o
	}()
	rel2()
	select {
	case o := <-got:
		if o.Version == cur.Version {
			t.Fatal("etag wait returned unchanged")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("etag wait did not wake on a change")
	}
}

// A replica dies mid-step (its River client stopped abruptly: the step
// never returns, nothing is released, its job stays "running" for River,
// and River's rescue is an hour away): another replica's janitor takes the
// operation over once the lease expires, the unfinished step runs once
// more, and no step ever runs twice at once.
func TestDeadReplicaIsTakenOverWithinAFewLeases(t *testing.T) {
	cfg := operation.Config{Lease: 1500 * time.Millisecond, JanitorInterval: 250 * time.Millisecond}
	e := newEnv(t, cfg)
	e.steps.dieOnCancel = true
	e.steps.gate("two")
	a := e.replicaWith(cfg, 1, time.Hour, false) // a worker only: B is the leader
	op := e.start()
	recv(t, e.steps.entered["two"])
	b := e.replicaWith(cfg, 1, time.Hour, true)
	completed, stop := b.Subscribe(river.EventKindJobCompleted)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_ = a.StopAndCancel(ctx) // times out: the "dead" step never returns
	cancel()
	died := time.Now()
	e.steps.mu.Lock()
	e.steps.gates["two"] = nil // the resumed attempt goes through
	e.steps.mu.Unlock()
	done := e.wait(op.ID)
	took := time.Since(died)
	if done.State != operation.StateSucceeded {
		t.Fatalf("state %s", done.State)
	}
	t.Logf("taken over and finished %v after the replica died (lease %v)", took, cfg.Lease)
	if took > 4*cfg.Lease {
		t.Fatalf("took %v, more than 4 leases", took)
	}
	if n := len(e.steps.attempts(op.ID, "one")); n != 1 {
		t.Fatalf("step one ran %d times; it was recorded before the crash", n)
	}
	if done.Steps[1].Attempts != 2 || len(e.steps.attempts(op.ID, "two")) != 2 || len(e.steps.attempts(op.ID, "three")) != 1 {
		t.Fatalf("step two attempts %d, calls %d", done.Steps[1].Attempts, len(e.steps.attempts(op.ID, "two")))
	}
	if n := e.steps.overlap.Load(); n != 0 {
		t.Fatalf("%d times two steps of the operation ran at once", n)
	}
	if done.Incarnation != 1 {
		t.Fatalf("incarnation %d", done.Incarnation)
	}
	// The new incarnation's job completed; the dead replica's job is still
	// "running" for River.
	for ev := range completed {
		if ev.Job.Kind == "operation" {
			var args operation.RunArgs
			if err := json.Unmarshal(ev.Job.EncodedArgs, &args); err != nil || args.Incarnation != 1 {
				t.Fatalf("completed job %s", ev.Job.EncodedArgs)
			}
			break
		}
	}
	var running int
	if err := e.pool.QueryRow(context.Background(), `select count(*) from river_job where kind = 'operation' and state = 'running'`).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if running != 1 {
		t.Fatalf("river jobs: %d running", running)
	}
	// When River eventually runs the old job again, it ends at once.
	runner := operation.NewRunner(cfg, e.db, e.db, e.kinds, e.ins, e.events, slog.New(slog.DiscardHandler))
	if err := runner.Run(context.Background(), operation.RunArgs{Org: e.org, ID: op.ID}); err != nil {
		t.Fatalf("superseded run: %v", err)
	}
	if n := len(e.events.of(op.ID)); n != 1 {
		t.Fatalf("%d operation.finished events", n)
	}
}

// A superseded job (an older incarnation) does nothing even while the
// operation is unfinished.
func TestSupersededJobDoesNothing(t *testing.T) {
	cfg := operation.Config{Lease: 500 * time.Millisecond, JanitorInterval: -1}
	e := newEnv(t, cfg)
	op := e.start()
	// Mark it taken over (as by the janitor) without running it.
	if _, err := e.pool.Exec(context.Background(), `update operations set incarnation = 1 where id = $1`, op.ID); err != nil {
		t.Fatal(err)
	}
	runner := operation.NewRunner(cfg, e.db, e.db, e.kinds, e.ins, e.events, slog.New(slog.DiscardHandler))
	if err := runner.Run(context.Background(), operation.RunArgs{Org: e.org, ID: op.ID}); err != nil {
		t.Fatal(err)
	}
	if got := e.get(op.ID); got.State != operation.StatePending || len(e.steps.attempts(op.ID, "one")) != 0 {
		t.Fatalf("a superseded job ran the operation: %s", got.State)
	}
	if err := runner.Run(context.Background(), operation.RunArgs{Org: e.org, ID: op.ID, Incarnation: 1}); err != nil {
		t.Fatal(err)
	}
	if got := e.get(op.ID); got.State != operation.StateSucceeded {
		t.Fatalf("the current incarnation did not run it: %s", got.State)
	}
}

func TestTwoReplicasNeverRunOneOperationConcurrently(t *testing.T) {
	e := newEnv(t, operation.Config{Lease: 2 * time.Second})
	e.replica(4, time.Hour)
	b := e.replica(4, time.Hour)
	var ids []uuid.UUID
	for range 8 {
		op := e.start()
		ids = append(ids, op.ID)
		// A duplicate job for the same operation, bypassing River's
		// uniqueness (as after a rescue of a job that was only slow): the
		// lease alone must keep the two runs apart.
		if _, err := b.Insert(context.Background(), dupArgs{Org: e.org, ID: op.ID, Dup: 1},
			&river.InsertOpts{Queue: operation.QueueOperations}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		op := e.wait(id)
		if op.State != operation.StateSucceeded {
			t.Fatalf("%s: %s", id, op.State)
		}
		for _, s := range []string{"one", "two", "three"} {
			if n := len(e.steps.attempts(id, s)); n != 1 {
				t.Fatalf("%s step %s ran %d times", id, s, n)
			}
		}
	}
	if n := e.steps.overlap.Load(); n != 0 {
		t.Fatalf("%d times two steps of one operation ran at once", n)
	}
}

// dupArgs is an operation job that River does not deduplicate (its args
// differ); the worker reads it as RunArgs.
type dupArgs struct {
	Org uuid.UUID `json:"org"`
	ID  uuid.UUID `json:"id"`
	Dup int       `json:"dup"`
}

func (dupArgs) Kind() string { return "operation" }

// pollKind polls: "healthy-after" succeeds at its n-th look, "degrade"
// succeeds degraded once its deadline passed, "stubborn" polls past its
// deadline.
func pollKind() operation.Kind {
	return operation.Kind{Name: "test.poll", Steps: []operation.Step{{Name: "settle", Run: func(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
		var p struct {
			Mode  string `json:"mode"`
			Looks int    `json:"looks"`
		}
		if err := sc.DecodeParams(&p); err != nil {
			return nil, err
		}
		switch {
		case p.Mode == "healthy-after" && sc.Polls+1 >= p.Looks:
			return operation.Out(map[string]any{"outcome": "healthy", "polls": sc.Polls})
		case p.Mode == "degrade" && sc.PollExpired:
			return operation.Out(map[string]any{"outcome": "degraded", "polls": sc.Polls})
		}
		// healthy-after must reach its look however slow the machine is:
		// its deadline is far; the others are meant to pass theirs.
		deadline := time.Now().Add(400 * time.Millisecond)
		if p.Mode == "healthy-after" {
			deadline = time.Now().Add(time.Minute)
		}
		return nil, operation.Poll(100*time.Millisecond, deadline, "propagating (look %d)", sc.Polls+1)
	}}}}
}

func (e *env) startKind(kind string, params any) operation.Operation {
	e.t.Helper()
	var op operation.Operation
	err := e.db.InTx(context.Background(), func(ctx context.Context, tx uow.Tx) error {
		var err error
		op, err = e.svc.Start(ctx, tx, operation.Spec{Org: e.org, Kind: kind, Params: params})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return op
}

func TestPollingStepSnoozesUntilHealthyOrDecidesAtItsDeadline(t *testing.T) {
	e := newEnv(t, operation.Config{PollMin: 50 * time.Millisecond, WaitRecheck: time.Hour})
	e.kinds.MustRegister(pollKind())
	c := e.replica(1, time.Hour)
	snoozed, stop := c.Subscribe(river.EventKindJobSnoozed)
	defer stop()

	// Healthy at the third look: two polls, one attempt, each poll a
	// visible change carrying its observation, the job snoozed (no worker
	// held) between looks. Wait returns the latest version, so a slow
	// reader may see only the later observation, never another one or out
	// of order.
	op := e.startKind("test.poll", map[string]any{"mode": "healthy-after", "looks": 3})
	var observations []string
	cur := op
	for !cur.Done() {
		var err error
		if cur, err = e.svc.Wait(context.Background(), e.org, op.ID, 10*time.Second, cur.Version); err != nil {
			t.Fatal(err)
		}
		if s := cur.Steps[0]; s.Observation != "" && (len(observations) == 0 || observations[len(observations)-1] != s.Observation) {
			observations = append(observations, s.Observation)
		}
	}
	s := cur.Steps[0]
	if cur.State != operation.StateSucceeded || s.Polls != 2 || s.Attempts != 1 || s.PollDeadline == nil || s.LastError != nil ||
		len(observations) == 0 || observations[len(observations)-1] != "propagating (look 2)" ||
		(len(observations) == 2 && observations[0] != "propagating (look 1)") || len(observations) > 2 {
		t.Fatalf("healthy-after: %s, step %+v, observations %v", cur.State, s, observations)
	}
	for range 2 {
		select {
		case <-snoozed:
		case <-time.After(10 * time.Second):
			t.Fatal("the job was not snoozed between polls")
		}
	}

	// At its deadline the step decides: degraded.
	deg := e.wait(e.startKind("test.poll", map[string]any{"mode": "degrade"}).ID)
	out, ok, err := operation.RecordedOutput[struct {
		Outcome string `json:"outcome"`
		Polls   int    `json:"polls"`
	}](deg, "settle")
	if deg.State != operation.StateSucceeded || !ok || err != nil || out.Outcome != "degraded" || out.Polls < 1 || deg.Steps[0].Attempts != 1 {
		t.Fatalf("degrade: %s %+v %v", deg.State, out, err)
	}

	// A step that polls past its deadline fails.
	stub := e.wait(e.startKind("test.poll", map[string]any{"mode": "stubborn"}).ID)
	if stub.State != operation.StateFailed || stub.Error.Reason != "POLL_DEADLINE" || stub.Error.Step != "settle" ||
		stub.Steps[0].State != operation.StepFailed {
		t.Fatalf("stubborn: %s %+v", stub.State, stub.Error)
	}
	if evs := e.events.of(stub.ID); len(evs) != 1 || evs[0].State != "failed" || evs[0].Error.Reason != "POLL_DEADLINE" {
		t.Fatalf("events %+v", evs)
	}
}

// operation.finished is queued in the transaction of the final state: when
// queueing fails, the final state does not commit either, and the retried
// job ends the operation with exactly one event.
func TestFinishedEventCommitsWithTheFinalState(t *testing.T) {
	e := newEnv(t, operation.Config{})
	e.events.failures = 1
	e.replica(1, time.Hour)
	op := e.wait(e.start().ID)
	if op.State != operation.StateSucceeded {
		t.Fatalf("state %s", op.State)
	}
	evs := e.events.of(op.ID)
	if len(evs) != 1 || evs[0].State != "succeeded" || evs[0].Error != nil || evs[0].Time.IsZero() || evs[0].Target != op.Target {
		t.Fatalf("events %+v", evs)
	}
	for _, s := range []string{"one", "two", "three"} {
		if n := len(e.steps.attempts(op.ID, s)); n != 1 {
			t.Fatalf("step %s ran %d times", s, n)
		}
	}
	// A cancel that ends an operation at once queues its event too.
	idle := newEnv(t, operation.Config{})
	pending := idle.start()
	if _, err := idle.svc.Cancel(context.Background(), idle.org, pending.ID); err != nil {
		t.Fatal(err)
	}
	if evs := idle.events.of(pending.ID); len(evs) != 1 || evs[0].State != "canceled" {
		t.Fatalf("cancel events %+v", evs)
	}
}

// The kind's end hook runs in the transaction of the final state: it sees
// the operation as written (final state), its error rolls the final state
// back (no event either) and the retried transition calls it again; an
// immediate cancel calls it too.
//
// The operation ends in the transaction recording its last step's success,
// the end in a savepoint: a failing end hook is rolled back alone (its
// write with it), the last step's outcome is kept (no step runs again),
// and the end is made again in a transaction of its own.
func TestFinishedHookRunsWithTheFinalState(t *testing.T) {
	e := newEnv(t, operation.Config{})
	key := idempotency.Key{RequestID: uuid.New(), Hash: []byte("h")}
	var (
		mu     sync.Mutex
		seen   []operation.State
		priors []string
		fails  = 1
	)
	k := e.steps.kind()
	k.Name = "test.hooked"
	k.Finished = func(ctx context.Context, tx uow.Tx, op operation.Operation) error {
		if tx == nil || !op.Done() || op.EndTime == nil {
			return errors.New("hook called outside a final state's transaction")
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, op.State)
		prior, err := e.db.ClaimRequest(ctx, tx, e.org, "Hook", key, "call-"+strconv.Itoa(len(seen)))
		if err != nil {
			return err
		}
		priors = append(priors, prior)
		if fails > 0 {
			fails--
			return errors.New("the hook's write failed")
		}
		return nil
	}
	e.kinds.MustRegister(k)
	e.replica(1, time.Hour)
	op := e.wait(e.startKind("test.hooked", map[string]any{}).ID)
	mu.Lock()
	got := append([]operation.State(nil), seen...)
	gotPriors := append([]string(nil), priors...)
	mu.Unlock()
	if op.State != operation.StateSucceeded || len(got) != 2 || got[0] != operation.StateSucceeded || got[1] != operation.StateSucceeded {
		t.Fatalf("state %s, hook saw %v (want a failed then a committed call)", op.State, got)
	}
	// The failed call's write was rolled back (the second call found no
	// claim), the second's committed.
	if len(gotPriors) != 2 || gotPriors[0] != "" || gotPriors[1] != "" {
		t.Fatalf("the hook's claims saw %q, want two first claims", gotPriors)
	}
	var prior string
	if err := e.db.InTx(context.Background(), func(ctx context.Context, tx uow.Tx) error {
		var err error
		prior, err = e.db.ClaimRequest(ctx, tx, e.org, "Hook", key, "later")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if prior != "call-2" {
		t.Fatalf("committed claim %q, want call-2's", prior)
	}
	for _, st := range op.Steps {
		if st.State != operation.StepSucceeded || st.Attempts != 1 {
			t.Fatalf("step %s %s after %d attempts: the failed end must not make a step run again", st.Name, st.State, st.Attempts)
		}
	}
	if evs := e.events.of(op.ID); len(evs) != 1 {
		t.Fatalf("events %+v, want one", evs)
	}

	idle := newEnv(t, operation.Config{})
	var canceled atomic.Int32
	k2 := idle.steps.kind()
	k2.Name = "test.hooked"
	k2.Finished = func(_ context.Context, _ uow.Tx, op operation.Operation) error {
		if op.State == operation.StateCanceled {
			canceled.Add(1)
		}
		return nil
	}
	idle.kinds.MustRegister(k2)
	pending := idle.startKind("test.hooked", map[string]any{})
	if _, err := idle.svc.Cancel(context.Background(), idle.org, pending.ID); err != nil {
		t.Fatal(err)
	}
	if canceled.Load() != 1 {
		t.Fatalf("hook calls on cancel: %d", canceled.Load())
	}
}

// TestRecordWithWritesInTheStepsRecord: a step's RecordWith writes commit
// in the transaction recording its success, or not at all: a write that
// fails rolls back with that record, and the attempt is recorded as
// failed with its error (retried, since it is retryable) instead.
func TestRecordWithWritesInTheStepsRecord(t *testing.T) {
	e := newEnv(t, operation.Config{BackoffBase: 10 * time.Millisecond})
	key := idempotency.Key{RequestID: uuid.New(), Hash: []byte("h")}
	var (
		mu     sync.Mutex
		priors []string
		calls  int
	)
	k := operation.Kind{Name: "test.recordwith", Steps: []operation.Step{{Name: "make",
		Run: func(_ context.Context, sc operation.StepContext) (operation.Outputs, error) {
			attempt := sc.Attempt
			if !sc.RecordWith(func(ctx context.Context, tx uow.Tx) error {
				if !tx.Transactional() {
					return errors.New("RecordWith outside a transaction")
				}
				prior, err := e.db.ClaimRequest(ctx, tx, e.org, "Test", key, "attempt-"+strconv.Itoa(attempt))
				mu.Lock()
				defer mu.Unlock()
				calls++
				priors = append(priors, prior)
				if err != nil {
					return err
				}
				if calls == 1 {
					return apperr.New(apperr.Unavailable, "the step's write failed")
				}
				return nil
			}) {
				return nil, errors.New("RecordWith refused inside the runner")
			}
			return operation.Outputs{"attempt": attempt}, nil
		}}}}
	e.kinds.MustRegister(k)
	e.replica(1, time.Hour)
	op := e.wait(e.startKind("test.recordwith", map[string]any{}).ID)
	if op.State != operation.StateSucceeded {
		t.Fatalf("state %s, error %+v", op.State, op.Error)
	}
	st := op.Steps[0]
	if st.Attempts != 2 || st.LastError == nil || !strings.Contains(st.LastError.Message, "the step's write failed") {
		t.Fatalf("step %+v, want a failed first attempt (its write's error) and a second that succeeded", st)
	}
	var out map[string]any
	if err := json.Unmarshal(st.Outputs, &out); err != nil || out["attempt"] != float64(2) {
		t.Fatalf("outputs %s (%v), want the second attempt's", st.Outputs, err)
	}
	mu.Lock()
	got := append([]string(nil), priors...)
	mu.Unlock()
	// The first write was rolled back with its record: the second found
	// nothing; the second committed with the step's success.
	if len(got) != 2 || got[0] != "" || got[1] != "" {
		t.Fatalf("claims saw %q, want two first claims", got)
	}
	var prior string
	if err := e.db.InTx(context.Background(), func(ctx context.Context, tx uow.Tx) error {
		var err error
		prior, err = e.db.ClaimRequest(ctx, tx, e.org, "Test", key, "later")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if prior != "attempt-2" {
		t.Fatalf("committed claim %q, want attempt-2's", prior)
	}
}

// TestFencedWriteIsAllOrNothing: a record made without the row lock (the
// runner's record from its attempt's snapshot) writes nothing, neither the
// operation nor any step, unless the operation is still at the fence's
// version and held by the fence's owner, in autocommit as in a
// transaction; with both, it writes like an unfenced write.
func TestFencedWriteIsAllOrNothing(t *testing.T) {
	e := newEnv(t, operation.Config{})
	ctx := context.Background()
	op := e.start()
	owner := uuid.New()
	until := time.Now().Add(time.Minute)
	if err := e.db.SetLease(ctx, e.db.Conn(), e.org, op.ID, owner, &until); err != nil {
		t.Fatal(err)
	}
	op = e.get(op.ID)
	step := op.Steps[0]
	step.State, step.Attempts = operation.StepRunning, 1
	write := func(tx uow.Tx, f operation.Fence) error {
		next := op
		next.State, next.LeaseOwner, next.LeaseExpireTime = operation.StateRunning, owner, &until
		_, err := e.db.WriteOperation(ctx, tx, next, []operation.StepRecord{step}, &f)
		return err
	}
	for _, c := range []struct {
		name  string
		fence operation.Fence
	}{
		{"an older version", operation.Fence{Version: op.Version - 1, Owner: owner}},
		{"a newer version", operation.Fence{Version: op.Version + 1, Owner: owner}},
		{"another owner", operation.Fence{Version: op.Version, Owner: uuid.New()}},
	} {
		if err := write(e.db.Conn(), c.fence); !errors.Is(err, operation.ErrFenced) {
			t.Fatalf("%s, autocommit: %v, want ErrFenced", c.name, err)
		}
		err := e.db.InTx(ctx, func(ctx context.Context, tx uow.Tx) error { return write(tx, c.fence) })
		if !errors.Is(err, operation.ErrFenced) {
			t.Fatalf("%s, in a transaction: %v, want ErrFenced", c.name, err)
		}
		got := e.get(op.ID)
		if got.Version != op.Version || got.State != op.State || got.Steps[0].State != op.Steps[0].State || got.Steps[0].Attempts != 0 {
			t.Fatalf("%s: written (version %d, state %s, step %s after %d attempts)", c.name, got.Version, got.State,
				got.Steps[0].State, got.Steps[0].Attempts)
		}
	}
	if err := write(e.db.Conn(), operation.Fence{Version: op.Version, Owner: owner}); err != nil {
		t.Fatal(err)
	}
	got := e.get(op.ID)
	if got.Version != op.Version+1 || got.State != operation.StateRunning || got.Steps[0].State != operation.StepRunning || got.Steps[0].Attempts != 1 {
		t.Fatalf("fenced write at the version and owner: version %d, state %s, step %s after %d attempts", got.Version, got.State,
			got.Steps[0].State, got.Steps[0].Attempts)
	}
}
