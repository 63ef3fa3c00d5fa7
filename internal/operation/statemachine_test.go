package operation

import (
	"context"
	"errors"
	"fmt"
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
