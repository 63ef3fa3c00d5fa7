package apperr

import "fmt"

// Violations collects field violations while a request is validated.
// The zero value is ready to use.
type Violations struct {
	list []FieldViolation
}

// Add records a violation of field.
func (v *Violations) Add(field, format string, args ...any) {
	v.list = append(v.list, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Check records a violation of field when ok is false.
func (v *Violations) Check(ok bool, field, format string, args ...any) {
	if !ok {
		v.Add(field, format, args...)
	}
}

// Len returns the number of violations.
func (v *Violations) Len() int { return len(v.list) }

// Err returns an InvalidArgument error listing every violation, or nil.
func (v *Violations) Err() error {
	if len(v.list) == 0 {
		return nil
	}
	msg := "invalid " + v.list[0].Field + ": " + v.list[0].Description
	if n := len(v.list) - 1; n > 0 {
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
