package apperr

import (
	"fmt"
	"unicode/utf8"
)

// MaxViolations bounds the field violations one error carries; the rest
// are counted in its message. A request of repeated bad values (a 1 MiB
// list) then costs a bounded error, not one detail per element.
const MaxViolations = 20

// maxDescription bounds one violation's description (bytes), which may
// quote what the caller sent.
const maxDescription = 300

// MaxListLen is the longest repeated field a request may carry (features,
// events, update_mask paths): far above any valid list, far below what
// would make validating it costly.
const MaxListLen = 100

// Violations collects field violations while a request is validated.
// The zero value is ready to use.
type Violations struct {
	list    []FieldViolation
	dropped int // beyond MaxViolations
}

// Add records a violation of field.
func (v *Violations) Add(field, format string, args ...any) {
	if len(v.list) >= MaxViolations {
		v.dropped++
		return
	}
	d := fmt.Sprintf(format, args...)
	if len(d) > maxDescription {
		cut := maxDescription
		for cut > 0 && !utf8.RuneStart(d[cut]) {
			cut--
		}
		d = d[:cut] + "…"
	}
	v.list = append(v.list, FieldViolation{Field: field, Description: d})
}

// Check records a violation of field when ok is false.
func (v *Violations) Check(ok bool, field, format string, args ...any) {
	if !ok {
		v.Add(field, format, args...)
	}
}

// CheckLen records a violation of a repeated field longer than
// MaxListLen and reports whether it is within the bound; the caller then
// does not look at its elements.
func (v *Violations) CheckLen(field string, n int) bool {
	if n > MaxListLen {
		v.Add(field, "at most %d elements (got %d)", MaxListLen, n)
		return false
	}
	return true
}

// Len returns the number of violations.
func (v *Violations) Len() int { return len(v.list) + v.dropped }

// Err returns an InvalidArgument error listing the violations (at most
// MaxViolations of them), or nil.
func (v *Violations) Err() error {
	if len(v.list) == 0 {
		return nil
	}
	msg := "invalid " + v.list[0].Field + ": " + v.list[0].Description
	if n := v.Len() - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return &Error{Kind: InvalidArgument, Message: msg, Reason: "INVALID_ARGUMENT", Violations: v.list}
}

// Invalid is a single-field InvalidArgument error.
func Invalid(field, format string, args ...any) error {
	var v Violations
	v.Add(field, format, args...)
	return v.Err()
}
