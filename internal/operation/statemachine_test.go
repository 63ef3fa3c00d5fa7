package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

func TestOperationTransitions(t *testing.T) {
	all := []State{StatePending, StateRunning, StateSucceeded, StateFailed, StateCanceled}
	allowed := map[[2]State]bool{
		{StatePending, StateRunning}:   true,
		{StatePending, StateCanceled}:  true,
		{StateRunning, StateSucceeded}: true,
		{StateRunning, StateFailed}:    true,
		{StateRunning, StateCanceled}:  true,
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				if got, want := from.CanTransition(to), allowed[[2]State{from, to}]; got != want {
					t.Errorf("CanTransition = %v, want %v", got, want)
				}
			})
		}
	}
	for _, s := range all {
		if s.Done() != (s == StateSucceeded || s == StateFailed || s == StateCanceled) {
			t.Errorf("%s.Done() = %v", s, s.Done())
		}
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	if State("done").Valid() || State("pending").CanTransition("done") {
		t.Error("unknown state accepted")
	}
}

func TestStepTransitions(t *testing.T) {
	all := []StepState{StepPending, StepRunning, StepSucceeded, StepFailed, StepSkipped, StepCanceled}
	allowed := map[[2]StepState]bool{
		{StepPending, StepRunning}:   true, // first attempt
		{StepPending, StepSkipped}:   true,
		{StepPending, StepCanceled}:  true, // canceled before it ran
		{StepRunning, StepRunning}:   true, // re-run after a crash
		{StepRunning, StepPending}:   true, // retryable failure, waiting for the next attempt
		{StepRunning, StepSucceeded}: true,
		{StepRunning, StepFailed}:    true,
		{StepRunning, StepSkipped}:   true,
		{StepRunning, StepCanceled}:  true, // its runner died and the operation was canceled
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				if got, want := from.CanTransition(to), allowed[[2]StepState{from, to}]; got != want {
					t.Errorf("CanTransition = %v, want %v", got, want)
				}
			})
		}
	}
}

func TestCancelNow(t *testing.T) {
	now := time.Now()
	owner := uuid.New()
	op := Operation{State: StateRunning, LeaseOwner: owner, LeaseExpireTime: &now, Steps: []StepRecord{
		{Ordinal: 0, Name: "a", State: StepSucceeded}, {Ordinal: 1, Name: "b", State: StepRunning},
		{Ordinal: 2, Name: "c", State: StepPending, NextAttemptTime: &now},
	}}
	changed, err := cancelNow(&op, now)
	if err != nil {
		t.Fatal(err)
	}
	if op.State != StateCanceled || op.EndTime == nil || op.LeaseOwner != uuid.Nil || len(changed) != 2 ||
		changed[0].Name != "b" || changed[1].State != StepCanceled || changed[1].NextAttemptTime != nil || op.Steps[0].State != StepSucceeded {
		t.Fatalf("cancelNow: %+v, changed %+v", op, changed)
	}
	done := Operation{State: StateSucceeded}
	if _, err := cancelNow(&done, now); err == nil {
		t.Fatal("canceled a succeeded operation")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		retryable  bool
		retryAfter time.Duration
		code       string
		reason     string
		remedy     string
	}{
		{"throttled", &mserr.Error{Class: mserr.ClassThrottled, RetryAfter: 7 * time.Second, Service: "graph", Code: "TooManyRequests"},
			true, 7 * time.Second, "RESOURCE_EXHAUSTED", "throttled", ""},
		{"lag", fmt.Errorf("creating: %w", &mserr.Error{Class: mserr.ClassNotFound, Lag: true}), true, 0, "UNAVAILABLE", "not-found", ""},
		{"permission", &mserr.Error{Class: mserr.ClassPermissionMissing, Remedy: "Grant the role"}, false, 0, "PERMISSION_DENIED", "permission-missing", "Grant the role"},
		{"policy", &mserr.Error{Class: mserr.ClassPolicyBlocked, Remedy: "Allow secrets"}, false, 0, "FAILED_PRECONDITION", "policy-blocked", "Allow secrets"},
		{"apperr unavailable", apperr.New(apperr.Unavailable, "vault down"), true, 0, "UNAVAILABLE", "UNAVAILABLE", ""},
		{"apperr precondition", apperr.New(apperr.FailedPrecondition, "no consent").WithReason("NOT_CONSENTED"), false, 0, "FAILED_PRECONDITION", "NOT_CONSENTED", ""},
		{"retry helper", Retry("busy", time.Second, "busy"), true, time.Second, "UNAVAILABLE", "busy", ""},
		{"fail helper", Fail(apperr.FailedPrecondition, "blocked", "fix it", "blocked"), false, 0, "FAILED_PRECONDITION", "blocked", "fix it"},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), true, 0, "DEADLINE_EXCEEDED", "TIMEOUT", ""},
		{"unclassified", errors.New("password=hunter2"), true, 0, "INTERNAL", "INTERNAL", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := classify(tc.err)
			if v.lag != (tc.name == "lag") {
				t.Fatalf("classify %s: lag %v", tc.name, v.lag)
			}
			if v.retryable != tc.retryable || v.retryAfter != tc.retryAfter || v.failure.Code != tc.code || v.failure.Reason != tc.reason || v.failure.Remedy != tc.remedy {
				t.Fatalf("classify = %+v", v)
			}
			if tc.name == "unclassified" && v.failure.Message != "internal error" {
				t.Fatalf("unclassified text shown: %q", v.failure.Message)
			}
		})
	}
	if v := classify(Skip("nothing to do")); !v.skip {
		t.Fatal("Skip not recognised")
	}
}

func TestDelay(t *testing.T) {
	r := &Runner{cfg: Config{BackoffBase: time.Second, BackoffMax: 10 * time.Second}}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		d := r.delay(attempts, 0)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("delay(%d) = %v, want about %v", attempts, d, want)
		}
	}
	if d := r.delay(1, 42*time.Second); d != 42*time.Second {
		t.Errorf("Retry-After not honoured exactly: %v", d)
	}
}

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Filter
		bad  bool
	}{
		{"", Filter{}, false},
		{"state = RUNNING", Filter{State: StateRunning}, false},
		{`state=OPERATION_STATE_failed AND kind = "provision-integration"`, Filter{State: StateFailed, Kind: "provision-integration"}, false},
		{`target = "organizations/x/tenants/y" and kind=test.steps`, Filter{Target: "organizations/x/tenants/y", Kind: "test.steps"}, false},
		{"state = DONE", Filter{}, true},
		{"color = red", Filter{}, true},
		{"state = RUNNING state = FAILED", Filter{}, true},
		{"state = RUNNING AND state = FAILED", Filter{}, true},
		{"state RUNNING", Filter{}, true},
		{`kind = "unterminated`, Filter{}, true},
		{"kind = UPPER", Filter{}, true},
		{"state = RUNNING OR kind = x", Filter{}, true},
	} {
		got, err := ParseFilter(tc.in)
		if tc.bad {
			e, ok := apperr.From(err)
			if !ok || e.Kind != apperr.InvalidArgument || len(e.Violations) != 1 || e.Violations[0].Field != "filter" {
				t.Errorf("ParseFilter(%q) = %v, want InvalidArgument naming filter", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseName(t *testing.T) {
	o, id := uuid.New(), uuid.New()
	n, err := ParseName("name", Name{o, id}.String())
	if err != nil || n != (Name{o, id}) {
		t.Fatalf("round trip: %v %v", n, err)
	}
	for _, bad := range []string{"", "organizations/" + o.String(), "organizations/" + o.String() + "/operations/x",
		"organizations/" + o.String() + "/tenants/" + id.String(), "organizations/" + o.String() + "/operations/" + id.String() + "/x"} {
		if _, err := ParseName("name", bad); !apperr.Is(err, apperr.InvalidArgument) {
			t.Errorf("ParseName(%q) = %v", bad, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	run := func(context.Context, StepContext) (Outputs, error) { return nil, nil }
	if err := r.Register(Kind{Name: "a.b", Steps: []Step{{Name: "x", Run: run}}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{
		{Name: "a.b", Steps: []Step{{Name: "x", Run: run}}},                      // twice
		{Name: "Bad", Steps: []Step{{Name: "x", Run: run}}},                      // name
		{Name: "c", Steps: nil},                                                  // no steps
		{Name: "d", Steps: []Step{{Name: "x", Run: run}, {Name: "x", Run: run}}}, // duplicate step
		{Name: "e", Steps: []Step{{Name: "x"}}},                                  // no Run
	} {
		if err := r.Register(k); err == nil {
			t.Errorf("Register(%s) accepted", k.Name)
		}
	}
}

func threeSteps(states ...StepState) Operation {
	op := Operation{State: StateRunning, LeaseOwner: uuid.New(), StepsTotal: len(states)}
	for i, s := range states {
		op.Steps = append(op.Steps, StepRecord{Ordinal: i, Name: fmt.Sprint("s", i), State: s, Attempts: 1})
	}
	return op
}

func TestFailNowCancelsTheRemainingSteps(t *testing.T) {
	now := time.Now()
	op := threeSteps(StepSucceeded, StepRunning, StepPending, StepPending)
	op.Steps[2].NextAttemptTime = &now
	changed, err := failNow(&op, 1, Failure{Code: "PERMISSION_DENIED", Reason: "permission-missing", Message: "no"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if op.State != StateFailed || op.EndTime == nil || op.Error == nil || op.Error.Step != "s1" || op.LeaseOwner != uuid.Nil {
		t.Fatalf("operation: %+v", op)
	}
	want := []StepState{StepSucceeded, StepFailed, StepCanceled, StepCanceled}
	for i, s := range op.Steps {
		if s.State != want[i] {
			t.Fatalf("step %d is %s, want %s", i, s.State, want[i])
		}
	}
	if len(changed) != 3 || changed[0].Name != "s1" || changed[1].NextAttemptTime != nil || changed[2].EndTime == nil {
		t.Fatalf("changed %+v", changed)
	}
	if op.StepsDone != 0 || op.Percent() != 0 {
		t.Fatalf("canceled steps counted as done: %d", op.StepsDone)
	}
	// Only a running step of an unfinished operation can fail.
	for _, bad := range []Operation{threeSteps(StepSucceeded), {State: StateSucceeded, Steps: []StepRecord{{State: StepRunning}}}} {
		if _, err := failNow(&bad, 0, Failure{}, now); err == nil {
			t.Fatalf("failNow accepted %+v", bad)
		}
	}
}

func TestSettle(t *testing.T) {
	r := &Runner{cfg: Config{BackoffBase: time.Second}.WithDefaults()}
	throttled := &mserr.Error{Class: mserr.ClassThrottled, Status: 429, RetryAfter: 7 * time.Second}
	lagging := fmt.Errorf("creating: %w", &mserr.Error{Class: mserr.ClassNotReplicated, Status: 400, Lag: true})
	lagThrottled := &mserr.Error{Class: mserr.ClassNotReplicated, Status: 404, Lag: true, RetryAfter: 30 * time.Second}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	deadline := now.Add(time.Minute)
	type check func(t *testing.T, op Operation, changed []StepRecord)
	for _, tc := range []struct {
		name  string
		prep  func(op *Operation)
		out   outcome
		max   int
		check check
	}{
		{"success records outputs", nil, outcome{outputs: []byte(`{"id":"x"}`)}, 10, func(t *testing.T, op Operation, ch []StepRecord) {
			if s := op.Steps[1]; s.State != StepSucceeded || string(s.Outputs) != `{"id":"x"}` || op.StepsDone != 1 || len(ch) != 1 {
				t.Fatalf("%+v", s)
			}
		}},
		{"skip", nil, outcome{err: Skip("none"), v: classify(Skip("none"))}, 10, func(t *testing.T, op Operation, _ []StepRecord) {
			if op.Steps[1].State != StepSkipped || op.StepsDone != 1 {
				t.Fatalf("%+v", op.Steps[1])
			}
		}},
		{"poll: pending, attempt not consumed, deadline kept", func(op *Operation) { op.Steps[1].Attempts = 2 },
			outcome{err: Poll(5*time.Second, deadline, "propagating"), v: classify(Poll(5*time.Second, deadline, "propagating"))}, 2,
			func(t *testing.T, op Operation, _ []StepRecord) {
				s := op.Steps[1]
				if s.State != StepPending || s.Attempts != 1 || s.Polls != 1 || s.Observation != "propagating" ||
					!s.PollDeadline.Equal(deadline) || !s.NextAttemptTime.Equal(now.Add(5*time.Second)) || op.State != StateRunning {
					t.Fatalf("%+v", s)
				}
			}},
		{"poll: the first deadline holds, next look not after it", func(op *Operation) {
			d := now.Add(2 * time.Second)
			op.Steps[1].PollDeadline, op.Steps[1].Polls = &d, 3
		}, outcome{err: Poll(time.Minute, now.Add(time.Hour), "x"), v: classify(Poll(time.Minute, now.Add(time.Hour), "x"))}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				s := op.Steps[1]
				if s.Polls != 4 || !s.PollDeadline.Equal(now.Add(2*time.Second)) || !s.NextAttemptTime.Equal(now.Add(2*time.Second)) {
					t.Fatalf("%+v", s)
				}
			}},
		{"poll: no deadline takes PollWindow", nil, outcome{err: Poll(0, time.Time{}, "x"), v: classify(Poll(0, time.Time{}, "x"))}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				s := op.Steps[1]
				if !s.PollDeadline.Equal(now.Add(30*time.Minute)) || !s.NextAttemptTime.Equal(now.Add(time.Second)) {
					t.Fatalf("%+v", s)
				}
			}},
		{"deadline passed during the attempt: one look at the deadline, now", func(op *Operation) {
			d := now.Add(-time.Second)
			op.Steps[1].PollDeadline = &d
		}, outcome{err: Poll(time.Second, time.Time{}, "x"), v: classify(Poll(time.Second, time.Time{}, "x"))}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				s := op.Steps[1]
				if op.State != StateRunning || s.State != StepPending || !s.NextAttemptTime.Equal(now) || !s.PollDeadline.Equal(now.Add(-time.Second)) {
					t.Fatalf("%+v", s)
				}
			}},
		{"poll past the deadline after its look there fails and cancels the rest", func(op *Operation) {
			d := now.Add(-time.Second)
			op.Steps[1].PollDeadline = &d
		}, outcome{err: Poll(time.Second, time.Time{}, "still propagating"), v: classify(Poll(time.Second, time.Time{}, "still propagating")), expiredLook: true}, 10,
			func(t *testing.T, op Operation, ch []StepRecord) {
				if op.State != StateFailed || op.Error.Reason != "POLL_DEADLINE" || op.Error.Code != "DEADLINE_EXCEEDED" ||
					op.Steps[1].State != StepFailed || op.Steps[2].State != StepCanceled || len(ch) != 2 || op.Steps[1].Observation != "still propagating" {
					t.Fatalf("%+v %+v", op, op.Error)
				}
			}},
		{"retryable with attempts left", nil, outcome{err: Retry("busy", 0, "busy"), v: classify(Retry("busy", 0, "busy"))}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				if s := op.Steps[1]; s.State != StepPending || s.NextAttemptTime == nil || s.LastError.Reason != "busy" || op.State != StateRunning {
					t.Fatalf("%+v", s)
				}
			}},
		{"retryable out of attempts fails, rest canceled", nil, outcome{err: Retry("busy", 0, "busy"), v: classify(Retry("busy", 0, "busy"))}, 1,
			func(t *testing.T, op Operation, _ []StepRecord) {
				if op.State != StateFailed || op.Steps[1].State != StepFailed || op.Steps[2].State != StepCanceled || op.Error.Step != "s1" {
					t.Fatalf("%+v", op)
				}
			}},
		{"throttle: the next attempt no earlier than Retry-After", nil, outcome{err: throttled, v: classify(throttled)}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				if s := op.Steps[1]; s.State != StepPending || s.NextAttemptTime == nil || s.NextAttemptTime.Before(now.Add(7*time.Second)) {
					t.Fatalf("%+v", s)
				}
			}},
		{"lag: retried past the attempts inside the window, backoff capped", func(op *Operation) {
			st := now.Add(-time.Minute)
			op.Steps[1].StartTime, op.Steps[1].Attempts = &st, 12
		}, outcome{err: lagging, v: classify(lagging)}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				s := op.Steps[1]
				if s.State != StepPending || s.NextAttemptTime == nil || s.NextAttemptTime.After(now.Add(16*time.Second*12/10)) ||
					s.NextAttemptTime.Before(now.Add(16*time.Second*8/10)) || s.LastError.Reason != "not-replicated" {
					t.Fatalf("%+v", s)
				}
			}},
		{"lag: the last look at the window's end", func(op *Operation) {
			st := now.Add(-5*time.Minute + time.Second)
			op.Steps[1].StartTime, op.Steps[1].Attempts = &st, 6
		}, outcome{err: Lag("no IDs yet"), v: classify(Lag("no IDs yet"))}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				if s := op.Steps[1]; s.State != StepPending || !s.NextAttemptTime.Equal(now.Add(time.Second)) {
					t.Fatalf("%+v", s)
				}
			}},
		{"lag: past the window fails", func(op *Operation) {
			st := now.Add(-5 * time.Minute)
			op.Steps[1].StartTime = &st
		}, outcome{err: lagging, v: classify(lagging)}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				if op.State != StateFailed || op.Steps[1].State != StepFailed || !strings.Contains(op.Error.Message, "still not replicated") {
					t.Fatalf("%+v %+v", op, op.Error)
				}
			}},
		{"lag with Retry-After: not before it", nil, outcome{err: lagThrottled, v: classify(lagThrottled)}, 10,
			func(t *testing.T, op Operation, _ []StepRecord) {
				if s := op.Steps[1]; s.State != StepPending || s.NextAttemptTime.Before(now.Add(30*time.Second)) {
					t.Fatalf("%+v", s)
				}
			}},
		{"permanent fails, rest canceled", nil, outcome{err: Fail(apperr.FailedPrecondition, "blocked", "fix", "blocked"),
			v: classify(Fail(apperr.FailedPrecondition, "blocked", "fix", "blocked"))}, 10,
			func(t *testing.T, op Operation, ch []StepRecord) {
				if op.State != StateFailed || op.Error.Remedy != "fix" || op.Steps[2].State != StepCanceled || op.Steps[0].State != StepSucceeded || len(ch) != 2 {
					t.Fatalf("%+v", op)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := threeSteps(StepSucceeded, StepRunning, StepPending)
			op.StepsDone = 0
			if tc.prep != nil {
				tc.prep(&op)
			}
			changed, err := r.settle(&op, 1, tc.max, tc.out, now)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, op, changed)
		})
	}
	op := threeSteps(StepSucceeded, StepPending)
	if _, err := r.settle(&op, 1, 10, outcome{}, now); err == nil {
		t.Fatal("settled a step that is not running")
	}
}

func TestFinishedEvent(t *testing.T) {
	end := time.Now()
	op := threeSteps(StepSucceeded, StepFailed)
	op.Org, op.ID, op.Kind, op.Target, op.State, op.EndTime = uuid.New(), uuid.New(), "provision-integration", "organizations/x/tenants/y/integrations/z", StateFailed, &end
	op.Params = []byte(`{"display_name":"Dropzone AI"}`)
	op.Error = &Failure{Code: "PERMISSION_DENIED", Reason: "permission-missing", Message: "Insufficient privileges", Remedy: "Grant it", Step: "s1"}
	ev := FinishedEvent(op)
	if ev.Type != "operation.finished" || ev.Operation != op.Name() || ev.OperationKind != op.Kind || ev.Target != op.Target ||
		ev.State != "failed" || !ev.Time.Equal(end) || ev.Error == nil || ev.Error.Remedy != "Grant it" || ev.Error.Step != "s1" ||
		ev.Resource() != op.Name() || ev.Organization != "organizations/"+op.Org.String() {
		t.Fatalf("%+v", ev)
	}
	op.State, op.Error = StateSucceeded, nil
	if ev := FinishedEvent(op); ev.Error != nil || ev.State != "succeeded" {
		t.Fatalf("%+v", ev)
	}
}

func TestTypedOutputs(t *testing.T) {
	type app struct {
		ObjectID string `json:"object_id"`
		ClientID string `json:"client_id"`
	}
	out, err := Out(app{ObjectID: "o1", ClientID: "c1"})
	if err != nil || out["object_id"] != "o1" {
		t.Fatalf("Out: %v %v", out, err)
	}
	if _, err := Out("not an object"); err == nil {
		t.Fatal("Out accepted a string")
	}
	sc := StepContext{Outputs: map[string]json.RawMessage{"register": []byte(`{"object_id":"o1","client_id":"c1"}`), "none": []byte(`{}`)}}
	got, ok, err := Output[app](sc, "register")
	if err != nil || !ok || got.ClientID != "c1" {
		t.Fatalf("Output: %+v %v %v", got, ok, err)
	}
	if _, ok, err := Output[app](sc, "none"); ok || err != nil {
		t.Fatal("a step without outputs read as recorded")
	}
	op := Operation{Steps: []StepRecord{{Name: "register", State: StepSucceeded, Outputs: sc.Outputs["register"]}, {Name: "later", State: StepCanceled}}}
	if got, ok, err := RecordedOutput[app](op, "register"); !ok || err != nil || got.ObjectID != "o1" {
		t.Fatalf("RecordedOutput: %+v %v %v", got, ok, err)
	}
	if _, ok, _ := RecordedOutput[app](op, "later"); ok {
		t.Fatal("a canceled step listed as existing")
	}
}

func TestJanitorStaleRule(t *testing.T) {
	r := &Runner{cfg: Config{OrphanAfter: time.Minute}.WithDefaults()}
	now := time.Now()
	past, future, old := now.Add(-time.Second), now.Add(time.Second), now.Add(-2*time.Minute)
	for _, tc := range []struct {
		name string
		op   Operation
		want bool
	}{
		{"lease expired", Operation{State: StateRunning, LeaseOwner: uuid.New(), LeaseExpireTime: &past, UpdateTime: now}, true},
		{"lease held", Operation{State: StateRunning, LeaseOwner: uuid.New(), LeaseExpireTime: &future, UpdateTime: old}, false},
		{"done", Operation{State: StateSucceeded, LeaseOwner: uuid.New(), LeaseExpireTime: &past}, false},
		{"unheld, recently touched", Operation{State: StateRunning, UpdateTime: past}, false},
		{"unheld, idle: lost job", Operation{State: StatePending, UpdateTime: old}, true},
		{"unheld, idle, recently taken over", Operation{State: StateRunning, UpdateTime: old, LeaseExpireTime: &past}, false},
		{"unheld, idle, waiting for a retry", Operation{State: StateRunning, UpdateTime: old,
			Steps: []StepRecord{{State: StepPending, NextAttemptTime: &future}}}, false},
	} {
		if got := r.stale(tc.op, now); got != tc.want {
			t.Errorf("%s: stale = %v, want %v", tc.name, got, tc.want)
		}
	}
}
