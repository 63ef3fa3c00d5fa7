package operation

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// State is an operation's state.
type State string

// The operation states. pending and running are not done; the others are
// final.
const (
	StatePending   State = "pending"   // started, no step has run yet
	StateRunning   State = "running"   // a step has started
	StateSucceeded State = "succeeded" // every step succeeded or was skipped
	StateFailed    State = "failed"    // a step failed permanently (or ran out of attempts)
	StateCanceled  State = "canceled"  // stopped at a step boundary after CancelOperation
)

// operationTransitions is the operation state machine: pending -> running
// -> succeeded | failed | canceled, and pending -> canceled (canceled
// before any step ran). Final states have no way out.
var operationTransitions = map[State][]State{
	StatePending: {StateRunning, StateCanceled},
	StateRunning: {StateSucceeded, StateFailed, StateCanceled},
}

// Done reports a final state.
func (s State) Done() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}

// Valid reports a known state.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateRunning, StateSucceeded, StateFailed, StateCanceled:
		return true
	}
	return false
}

// CanTransition reports whether the state machine allows s -> to.
func (s State) CanTransition(to State) bool {
	for _, t := range operationTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// StepState is a step's state.
type StepState string

// The step states.
const (
	StepPending   StepState = "pending"   // not run yet, or waiting for its next attempt or poll (NextAttemptTime)
	StepRunning   StepState = "running"   // an attempt started (recorded before the step's code runs)
	StepSucceeded StepState = "succeeded" // recorded with its outputs
	StepFailed    StepState = "failed"    // permanently, or out of attempts
	StepSkipped   StepState = "skipped"   // the step decided it had nothing to do (Skip)
	StepCanceled  StepState = "canceled"  // not run (or its outcome unknown) because the operation ended first: canceled, or failed at an earlier step
)

// stepTransitions is the step state machine. running -> running is a
// resumed attempt after a crash (the earlier attempt's outcome is unknown,
// which is why steps must be idempotent); running -> pending is a
// retryable failure waiting for its next attempt, or a poll ("not yet")
// waiting for its next look. pending -> canceled covers the steps after a
// failed one as well as a cancel: "canceled" means "not run because the
// operation ended first", never "nothing to do" (skipped, which counts as
// done in the progress).
var stepTransitions = map[StepState][]StepState{
	StepPending: {StepRunning, StepSkipped, StepCanceled},
	StepRunning: {StepRunning, StepPending, StepSucceeded, StepFailed, StepSkipped, StepCanceled},
}

// Done reports a final step state.
func (s StepState) Done() bool {
	return s == StepSucceeded || s == StepFailed || s == StepSkipped || s == StepCanceled
}

// Valid reports a known step state.
func (s StepState) Valid() bool {
	switch s {
	case StepPending, StepRunning, StepSucceeded, StepFailed, StepSkipped, StepCanceled:
		return true
	}
	return false
}

// CanTransition reports whether the step state machine allows s -> to.
func (s StepState) CanTransition(to StepState) bool {
	for _, t := range stepTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// Failure is an operation's error, or a step's last error. It is shown to
// callers: it never holds a secret, and an unclassified cause is reduced to
// "internal error".
type Failure struct {
	Code    string // canonical code name: UNAVAILABLE, FAILED_PRECONDITION, ...
	Reason  string // the error's class: an mserr class (throttled, permission-missing, ...) or an apperr reason
	Message string
	Remedy  string // what an administrator can do, when known
	Step    string // the step that failed (operation errors)
}

// codeName is the canonical code name of an apperr kind ("failed
// precondition" -> FAILED_PRECONDITION).
func codeName(k apperr.Kind) string {
	return strings.ToUpper(strings.ReplaceAll(k.String(), " ", "_"))
}

// Operation is long-running work and its steps.
type Operation struct {
	Org, ID         uuid.UUID
	Kind            string
	Target          string // resource name the operation works on, or ""
	State           State
	CancelRequested bool
	Params          json.RawMessage // the kind's parameters (never secrets)
	Result          json.RawMessage // when succeeded, if the kind produces one
	Error           *Failure        // when failed
	RequestID       uuid.UUID       // of the starting call; uuid.Nil when none
	StepsTotal      int
	StepsDone       int // succeeded or skipped
	Steps           []StepRecord
	LeaseOwner      uuid.UUID // the runner holding it; uuid.Nil when none
	LeaseExpireTime *time.Time
	CreateTime      time.Time
	UpdateTime      time.Time
	EndTime         *time.Time
	Version         int64
	// Incarnation numbers the River job allowed to run the operation: the
	// janitor bumps it when it takes the operation from a dead runner.
	Incarnation int
}

// Done reports whether the operation has ended.
func (o Operation) Done() bool { return o.State.Done() }

// Name is the operation's resource name.
func (o Operation) Name() string { return Name{Org: o.Org, ID: o.ID}.String() }

// Percent is the share of steps done, 0-100.
func (o Operation) Percent() int {
	if o.StepsTotal == 0 {
		if o.State == StateSucceeded {
			return 100
		}
		return 0
	}
	return o.StepsDone * 100 / o.StepsTotal
}

// Outputs returns the outputs of the steps that recorded any, by step
// name: what the operation made so far (after a cancel: what exists).
func (o Operation) Outputs() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, s := range o.Steps {
		if len(s.Outputs) > 0 && string(s.Outputs) != "{}" && string(s.Outputs) != "null" {
			out[s.Name] = s.Outputs
		}
	}
	return out
}

// StepRecord is one step's persisted state.
type StepRecord struct {
	Ordinal         int
	Name            string
	State           StepState
	Attempts        int
	StartTime       *time.Time // of the first attempt
	EndTime         *time.Time
	NextAttemptTime *time.Time // after a retryable failure
	LastError       *Failure
	Outputs         json.RawMessage // a JSON object; {} when none
	Polls           int             // "not yet" answers so far (Poll); not counted in Attempts
	PollDeadline    *time.Time      // set by the first poll: the step's polling ends then
	Observation     string          // the last poll's observation, shown to callers
}

// cancelNow ends op as canceled: every step not done is canceled (a step
// left running by a dead runner has an unknown outcome: it is canceled too,
// and its partial effects are whatever its idempotent re-run would have
// adopted). It returns the steps it changed.
func cancelNow(op *Operation, now time.Time) ([]StepRecord, error) {
	changed, err := cancelRest(op, 0, now)
	if err != nil {
		return nil, err
	}
	if !op.State.CanTransition(StateCanceled) {
		return nil, fmt.Errorf("operation %s: %s -> canceled not allowed", op.Name(), op.State)
	}
	op.State, op.EndTime = StateCanceled, &now
	op.LeaseOwner, op.LeaseExpireTime = uuid.Nil, nil
	return changed, nil
}

// failNow ends op as failed at the step at ordinal (which must be
// running) with f; the steps after it are canceled: they were not run
// because the operation ended. It returns the steps it changed.
func failNow(op *Operation, ordinal int, f Failure, now time.Time) ([]StepRecord, error) {
	if ordinal < 0 || ordinal >= len(op.Steps) {
		return nil, fmt.Errorf("operation %s: no step %d", op.Name(), ordinal)
	}
	st := &op.Steps[ordinal]
	if !st.State.CanTransition(StepFailed) {
		return nil, fmt.Errorf("step %s: %s -> failed not allowed", st.Name, st.State)
	}
	if !op.State.CanTransition(StateFailed) {
		return nil, fmt.Errorf("operation %s: %s -> failed not allowed", op.Name(), op.State)
	}
	st.State, st.EndTime, st.NextAttemptTime = StepFailed, &now, nil
	changed := []StepRecord{*st}
	rest, err := cancelRest(op, ordinal+1, now)
	if err != nil {
		return nil, err
	}
	f.Step = st.Name
	op.State, op.EndTime, op.Error = StateFailed, &now, &f
	op.LeaseOwner, op.LeaseExpireTime = uuid.Nil, nil
	return append(changed, rest...), nil
}

// cancelRest cancels the steps from ordinal on that are not done.
func cancelRest(op *Operation, from int, now time.Time) ([]StepRecord, error) {
	var changed []StepRecord
	for i := from; i < len(op.Steps); i++ {
		st := &op.Steps[i]
		if st.State.Done() {
			continue
		}
		if !st.State.CanTransition(StepCanceled) {
			return nil, fmt.Errorf("step %s: %s -> canceled not allowed", st.Name, st.State)
		}
		st.State, st.EndTime, st.NextAttemptTime = StepCanceled, &now, nil
		changed = append(changed, *st)
	}
	return changed, nil
}

// Name is an operation's resource name: organizations/{o}/operations/{op}.
type Name struct{ Org, ID uuid.UUID }

func (n Name) String() string {
	return "organizations/" + n.Org.String() + "/operations/" + n.ID.String()
}

// ParseName parses organizations/{organization}/operations/{operation};
// field names the request field in the InvalidArgument.
func ParseName(field, name string) (Name, error) {
	const pattern = "organizations/{organization}/operations/{operation}"
	if name == "" {
		return Name{}, apperr.Invalid(field, "required")
	}
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "organizations" || parts[2] != "operations" {
		return Name{}, apperr.Invalid(field, "must have the form %s", pattern)
	}
	org, err1 := uuid.Parse(parts[1])
	id, err2 := uuid.Parse(parts[3])
	if err1 != nil || err2 != nil || len(parts[1]) != 36 || len(parts[3]) != 36 {
		return Name{}, apperr.Invalid(field, "must have the form %s, with UUIDs as IDs", pattern)
	}
	return Name{Org: org, ID: id}, nil
}

// Fence is what a write without the operation's row lock expects to find:
// the version its writer last wrote or read, and its lease (see
// Store.WriteOperation and the runner's record).
type Fence struct {
	Version int64
	Owner   uuid.UUID
}

// ErrFenced: the operation changed since the fence's version, or another
// runner holds it; nothing was written.
var ErrFenced = errors.New("operation changed since it was last read")
