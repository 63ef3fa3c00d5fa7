package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Outputs is what a step records when it succeeds: a small JSON object
// (e.g. the Entra object IDs it created). Never secrets.
type Outputs map[string]any

// Step is one step of a kind.
//
// Run MUST be idempotent. The runner records the attempt as running before
// Run starts and the outputs after it returns, each in its own short
// transaction; a crash (or a lost lease) between Run's side effect and
// that record makes the runner call Run again, with the attempt counter
// one higher. Run must therefore find and adopt what an earlier attempt
// made (look the object up by a stable name, treat "already exists" as
// success) instead of making it twice.
type Step struct {
	Name string
	// Run does the step's work; it returns what to record, or an error
	// (see Retry, Fail, Skip and how errors are classified in doc.go).
	Run func(ctx context.Context, sc StepContext) (Outputs, error)
	// MaxAttempts caps the attempts (default Config.MaxAttempts).
	MaxAttempts int
	// Timeout bounds one attempt (default Config.StepTimeout); a timed-out
	// attempt is a retryable failure.
	Timeout time.Duration
	// SkipIf, when set, says from the operation's parameters and the
	// earlier steps' outputs alone (a pure test: no I/O) that the step has
	// nothing to do. The runner then records it skipped in the transaction
	// that records the step before it (or starts the next one), without
	// running it: a skipped step costs no record of its own. Run must still
	// skip on its own in the same cases (SkipIf is only a shortcut).
	SkipIf func(sc StepContext) bool
}

// Kind is a registered kind of operation: a name and its ordered steps.
type Kind struct {
	Name  string // e.g. "provision-integration"; lowercase letters, digits, _ . -
	Steps []Step
	// Result, when set, builds the operation's result from the outputs of
	// its steps (by step name) once every step is done. Without it the
	// result is empty.
	Result func(sc StepContext) (any, error)
	// Finished, when set, is the kind's end hook: called with the
	// operation as written in its final state (succeeded, failed or
	// canceled, by the runner or at once by Cancel), in the same
	// transaction, before the operation.finished event is queued. It
	// brings the kind's own records to their end (e.g. provision moves an
	// integration out of "provisioning"); its error rolls the final state
	// back, so the transition is retried (by the runner) or the Cancel
	// call fails. It must only write in tx: no network calls.
	Finished func(ctx context.Context, tx uow.Tx, op Operation) error
}

// StepContext is what a step sees.
type StepContext struct {
	Org       uuid.UUID
	Operation uuid.UUID
	Kind      string
	Target    string
	Params    json.RawMessage
	Step      string
	Attempt   int                        // 1 for the first attempt (polls do not count)
	Outputs   map[string]json.RawMessage // of the earlier steps, by step name
	Log       *slog.Logger
	// Polling (see Poll): how many times this step said "not yet", the
	// deadline its first poll set (nil before), and whether that deadline
	// has passed (by the database's clock): then the step must decide —
	// succeed with what it observed (e.g. a degraded result) or fail —
	// instead of polling again.
	Polls        int
	PollDeadline *time.Time
	PollExpired  bool
	// onRecord collects the writes the attempt asks to make in the
	// transaction that records its success (RecordWith); nil outside the
	// runner.
	onRecord *[]RecordFunc
}

// RecordFunc writes a step's own rows in the runner's record
// transaction (RecordWith). It must only write in tx: no network calls.
type RecordFunc func(ctx context.Context, tx uow.Tx) error

// RecordWith asks the runner to run f in the transaction that records
// this attempt's success, after the lease check and before the outcome is
// written: the step's own rows (e.g. the IDs of what it made, on the
// resource it works on) then commit together with its outputs, in one
// transaction instead of one of their own before the record. f runs only
// if the attempt succeeds; if f fails, nothing of that transaction is
// kept and the attempt is recorded as failed with f's error (classified
// as any step error: a retryable one is tried again). It reports false
// outside the runner (a StepContext built by hand, e.g. a test re-running
// a step): the caller then writes on its own.
func (sc StepContext) RecordWith(f RecordFunc) bool {
	if sc.onRecord == nil {
		return false
	}
	*sc.onRecord = append(*sc.onRecord, f)
	return true
}

// DecodeParams unmarshals the operation's parameters into v.
func (sc StepContext) DecodeParams(v any) error {
	if len(sc.Params) == 0 {
		return nil
	}
	return json.Unmarshal(sc.Params, v)
}

// Output unmarshals an earlier step's outputs into v; false when that step
// recorded none.
func (sc StepContext) Output(step string, v any) (bool, error) {
	raw, ok := sc.Outputs[step]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

var kindNameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// Registry holds the kinds a process can run. Kinds are registered in
// code at start-up (tests register their own).
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]*Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]*Kind{}} }

// Register adds k. Names must be unique, steps non-empty with unique names.
func (r *Registry) Register(k Kind) error {
	if !kindNameRE.MatchString(k.Name) {
		return fmt.Errorf("operation kind %q: name must match %s", k.Name, kindNameRE)
	}
	if len(k.Steps) == 0 {
		return fmt.Errorf("operation kind %q: no steps", k.Name)
	}
	seen := map[string]bool{}
	for _, s := range k.Steps {
		if s.Name == "" || s.Run == nil || seen[s.Name] {
			return fmt.Errorf("operation kind %q: step %q: needs a unique name and Run", k.Name, s.Name)
		}
		seen[s.Name] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[k.Name]; ok {
		return fmt.Errorf("operation kind %q registered twice", k.Name)
	}
	r.kinds[k.Name] = &k
	return nil
}

// MustRegister is Register for start-up code.
func (r *Registry) MustRegister(k Kind) {
	if err := r.Register(k); err != nil {
		panic(err)
	}
}

// Get returns the kind named name.
func (r *Registry) Get(name string) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// StepError is an error a step returns to say how it failed.
type StepError struct {
	Retryable  bool
	RetryAfter time.Duration // wait at least this long before the next attempt (retryable only)
	Kind       apperr.Kind
	Reason     string // the error's class
	Message    string // shown to callers: no secrets
	Remedy     string
	skip       bool
	poll       bool
	lag        bool      // replication lag: retried within Config.LagWindow (see Lag)
	deadline   time.Time // of a poll; zero: Config.PollWindow from the first poll
	Err        error     // cause: logged, never shown
}

func (e *StepError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *StepError) Unwrap() error { return e.Err }

// Skipped reports whether e is a Skip.
func (e *StepError) Skipped() bool { return e.skip }

// Retry is a retryable failure: the step is tried again after backoff, or
// after retryAfter when that is longer than zero.
func Retry(reason string, retryAfter time.Duration, format string, args ...any) *StepError {
	return &StepError{Retryable: true, RetryAfter: retryAfter, Kind: apperr.Unavailable, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Lag is replication lag the step recognised itself (e.g. an object it
// just created answers without its IDs yet): retried like a Microsoft
// answer mserr.IsReplicationLag reports, with backoff capped at
// Config.LagBackoffMax, within Config.LagWindow from the step's first
// start, whatever its attempt count.
func Lag(format string, args ...any) *StepError {
	return &StepError{Retryable: true, lag: true, Kind: apperr.Unavailable, Reason: string(mserr.ClassNotReplicated), Message: fmt.Sprintf(format, args...)}
}

// Fail is a permanent failure: the operation fails with this error and
// remedy.
func Fail(kind apperr.Kind, reason, remedy, format string, args ...any) *StepError {
	return &StepError{Kind: kind, Reason: reason, Remedy: remedy, Message: fmt.Sprintf(format, args...)}
}

// Skip says the step had nothing to do (recorded as skipped).
func Skip(format string, args ...any) *StepError {
	return &StepError{skip: true, Message: fmt.Sprintf(format, args...)}
}

// Poll says "not yet": the step has started something that takes its
// time (a check until healthy, replication until an object is visible)
// and wants to look again after `after`. It is not a failure and does not
// consume an attempt: the step becomes pending until then (its River job
// snoozes; no worker waits), its poll count goes up and the observation
// (format, args: a short message, never secrets) is recorded and shown
// (GetOperation, dzctl operation wait).
//
// deadline bounds the polling: the first poll's deadline holds for the
// step (later polls cannot move it; zero means Config.PollWindow after the
// first poll). The next look is never later than the deadline, and the
// run at or after it has StepContext.PollExpired set: the step then
// decides — succeed (with a degraded result in its outputs) or fail. A
// step that polls again past its deadline fails with reason
// POLL_DEADLINE and its last observation.
func Poll(after time.Duration, deadline time.Time, format string, args ...any) *StepError {
	return &StepError{poll: true, RetryAfter: after, deadline: deadline, Message: fmt.Sprintf(format, args...)}
}

// verdict is how the runner treats a step's error.
type verdict struct {
	failure    Failure
	retryable  bool
	retryAfter time.Duration
	skip       bool
	poll       bool
	lag        bool      // replication lag: retried within Config.LagWindow
	deadline   time.Time // of a poll
}

// retryableKinds are the apperr kinds worth another attempt.
var retryableKinds = map[apperr.Kind]bool{
	apperr.Unavailable: true, apperr.Aborted: true, apperr.DeadlineExceeded: true,
	apperr.ResourceExhausted: true, apperr.Internal: true,
}

// retryableClasses are the Microsoft error classes worth another attempt.
var retryableClasses = map[mserr.Class]bool{
	mserr.ClassTransient: true, mserr.ClassThrottled: true, mserr.ClassNotReplicated: true,
}

// classify decides retry or failure for a step's error: a StepError says
// so itself; a Microsoft error by its class (transient, throttled and
// replication lag retry, honouring Retry-After; anything else is permanent
// with mserr's remedy); an apperr error by its kind (Unavailable, Aborted,
// DeadlineExceeded, ResourceExhausted and Internal retry); a timeout
// retries; anything unclassified retries as "internal error", its text
// only logged.
func classify(err error) verdict {
	var se *StepError
	if errors.As(err, &se) {
		if se.skip {
			return verdict{skip: true, failure: Failure{Message: se.Message}}
		}
		if se.poll {
			return verdict{poll: true, retryAfter: se.RetryAfter, deadline: se.deadline, failure: Failure{Message: se.Message}}
		}
		return verdict{
			failure:   Failure{Code: codeName(se.Kind), Reason: se.Reason, Message: se.Message, Remedy: se.Remedy},
			retryable: se.Retryable, retryAfter: se.RetryAfter, lag: se.lag && se.Retryable,
		}
	}
	var me *mserr.Error
	if errors.As(err, &me) {
		retry := retryableClasses[me.Class] || me.Lag
		code := apperr.FailedPrecondition
		switch {
		case me.Class == mserr.ClassThrottled:
			code = apperr.ResourceExhausted
		case retry:
			code = apperr.Unavailable
		case me.Class == mserr.ClassPermissionMissing:
			code = apperr.PermissionDenied
		}
		return verdict{
			failure:   Failure{Code: codeName(code), Reason: string(me.Class), Message: me.Error(), Remedy: me.Remedy},
			retryable: retry, retryAfter: me.RetryAfter,
			// The one lag definition; a throttle is never lag (it waits
			// for Retry-After, not for replication).
			lag: mserr.IsReplicationLag(err) && me.Class != mserr.ClassThrottled,
		}
	}
	if ae, ok := apperr.From(err); ok {
		msg := ae.Message
		if ae.Kind == apperr.Internal {
			msg = "internal error"
		}
		reason := ae.Reason
		if reason == "" {
			reason = codeName(ae.Kind)
		}
		return verdict{failure: Failure{Code: codeName(ae.Kind), Reason: reason, Message: msg}, retryable: retryableKinds[ae.Kind]}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return verdict{failure: Failure{Code: codeName(apperr.DeadlineExceeded), Reason: "TIMEOUT", Message: "the step timed out"}, retryable: true}
	}
	return verdict{failure: Failure{Code: codeName(apperr.Internal), Reason: "INTERNAL", Message: "internal error"}, retryable: true}
}
