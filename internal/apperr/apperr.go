// Package apperr is dzconnect's one domain error type. Every layer returns
// *Error (or wraps one) for failures a caller should see; the transport maps
// Kind to a gRPC status code in exactly one place (internal/server).
//
// Messages are written for API callers and must never contain a secret.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the closed set of failure classes, mirroring gRPC codes.
type Kind int

// The kinds. Internal is the zero value so that an unclassified error is
// never reported as the caller's fault.
const (
	Internal Kind = iota
	InvalidArgument
	NotFound
	AlreadyExists
	FailedPrecondition
	Aborted
	PermissionDenied
	Unauthenticated
	ResourceExhausted
	Unavailable
	DeadlineExceeded
	Canceled
)

var kindNames = [...]string{
	Internal:           "internal",
	InvalidArgument:    "invalid argument",
	NotFound:           "not found",
	AlreadyExists:      "already exists",
	FailedPrecondition: "failed precondition",
	Aborted:            "aborted",
	PermissionDenied:   "permission denied",
	Unauthenticated:    "unauthenticated",
	ResourceExhausted:  "resource exhausted",
	Unavailable:        "unavailable",
	DeadlineExceeded:   "deadline exceeded",
	Canceled:           "canceled",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// FieldViolation names one invalid request field (google.rpc.BadRequest).
type FieldViolation struct {
	Field       string // request field path, e.g. "integration.application.client_id"
	Description string
}

// Error is a classified failure.
type Error struct {
	Kind       Kind
	Message    string            // safe to show the caller
	Reason     string            // stable machine-readable reason, UPPER_SNAKE (google.rpc.ErrorInfo)
	Violations []FieldViolation  // for InvalidArgument
	Metadata   map[string]string // shown with Reason (google.rpc.ErrorInfo metadata), e.g. a link that fixes it
	// RetryDelay, when positive, tells the caller when a retry may succeed
	// (google.rpc.RetryInfo; REST: the Retry-After header): rate limits
	// and busy on-demand checks.
	RetryDelay time.Duration
	Err        error // underlying cause; logged, never shown to callers
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap classifies err, keeping it as the (hidden) cause.
func Wrap(err error, kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
}

// WithReason sets the machine-readable reason.
func (e *Error) WithReason(reason string) *Error {
	e.Reason = reason
	return e
}

// WithMetadata adds a key and value to the error's metadata (shown to
// callers with the reason: never secrets).
func (e *Error) WithMetadata(key, value string) *Error {
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	e.Metadata[key] = value
	return e
}

// WithRetryDelay sets when a retry may succeed (google.rpc.RetryInfo).
func (e *Error) WithRetryDelay(d time.Duration) *Error {
	e.RetryDelay = d
	return e
}

// From finds the *Error in err's chain, if any.
func From(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err: Internal when err is not classified.
func KindOf(err error) Kind {
	if e, ok := From(err); ok {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is classified as kind.
func Is(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }

// NotFoundf is the NotFound every lookup returns, whoever owns the resource:
// existence is never revealed across organizations.
func NotFoundf(name string) *Error {
	return New(NotFound, "%s not found", name)
}

// KindOrDefault returns err's kind when classified, else def.
func KindOrDefault(err error, def Kind) Kind {
	if e, ok := From(err); ok {
		return e.Kind
	}
	return def
}

// EtagMismatch is the optimistic-concurrency failure every update and
// delete returns when the caller's etag is stale.
func EtagMismatch() *Error {
	return New(Aborted, "etag mismatch: the resource changed since it was read; read it again and retry").WithReason("ETAG_MISMATCH")
}
