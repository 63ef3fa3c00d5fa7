package organization

import (
	"time"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// The organization's credential settings (docs/credentials.md): how long a
// replaced credential keeps working after a rotation (the overlap), and how
// much lifetime an active credential has left when automatic renewal
// rotates it (the renewal threshold).
const (
	DefaultCredentialOverlap = 7 * 24 * time.Hour
	MaxCredentialOverlap     = 90 * 24 * time.Hour

	DefaultRenewalThreshold = 30 * 24 * time.Hour
	MinRenewalThreshold     = 24 * time.Hour
	MaxRenewalThreshold     = 180 * 24 * time.Hour
)

// ValidateCredentialOverlap checks an overlap: whole seconds, 0 to 90 days.
// field names it in the violation.
func ValidateCredentialOverlap(v *apperr.Violations, field string, d time.Duration) {
	v.Check(d >= 0 && d <= MaxCredentialOverlap && d%time.Second == 0, field,
		"must be whole seconds between 0 and 90 days")
}

// ValidateRenewalThreshold checks a renewal threshold: whole seconds, 1 to
// 180 days.
func ValidateRenewalThreshold(v *apperr.Violations, field string, d time.Duration) {
	v.Check(d >= MinRenewalThreshold && d <= MaxRenewalThreshold && d%time.Second == 0, field,
		"must be whole seconds between 1 and 180 days")
}

// validateCredentialSettings checks o's settings together: each in its
// range, and the threshold longer than the overlap. A rotation started at
// the threshold keeps the replaced credential for the overlap; an overlap
// reaching past the replaced credential's expiry would promise what Entra
// does not keep (the old secret stops at its endDateTime whatever the
// overlap says). The check constraints
// organizations_credential_overlap_seconds_ck and
// organizations_credential_renewal_threshold_seconds_ck back the rules.
func validateCredentialSettings(o Organization) error {
	var v apperr.Violations
	ValidateCredentialOverlap(&v, "organization.credential_overlap", o.CredentialOverlap)
	ValidateRenewalThreshold(&v, "organization.credential_renewal_threshold", o.CredentialRenewalThreshold)
	if v.Len() == 0 {
		v.Check(o.CredentialRenewalThreshold > o.CredentialOverlap, "organization.credential_renewal_threshold",
			"must be longer than credential_overlap (%s): the replaced credential must outlive the overlap", o.CredentialOverlap)
	}
	return v.Err()
}
