package cli

import (
	"fmt"
	"io"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// usageError is a bad command line (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// runError marks a failure after the command line was accepted (exit code 1).
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// exitCodeError ends a command that already printed its result with an exit
// code other than 0, and no error message (e.g. dzctl check on a broken
// integration exits 3).
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// printError writes err to w. A gRPC status prints as
//
//	Error: InvalidArgument: message
//	  field: description
//
// with one indented line per google.rpc.BadRequest field violation, and the
// google.rpc.ErrorInfo reason and PreconditionFailure violations when present.
func printError(w io.Writer, err error) {
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(w, "Error: %s\n", err)
		return
	}
	fmt.Fprintf(w, "Error: %s: %s\n", st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Fprintf(w, "  %s: %s\n", v.GetField(), v.GetDescription())
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.GetViolations() {
				fmt.Fprintf(w, "  %s: %s\n", v.GetSubject(), v.GetDescription())
			}
		case *errdetails.ErrorInfo:
			if d.GetReason() != "" {
				fmt.Fprintf(w, "  (reason: %s)\n", d.GetReason())
			}
		}
	}
}
