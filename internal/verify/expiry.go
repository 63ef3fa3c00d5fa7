package verify

// The expiry window: when a credential's end date is near, the check's
// expiry step says so (degraded) with the remedy, and, for a
// customer-managed integration (dzconnect cannot renew a secret it did not
// make), the integration.credential_expiring event goes out once per
// credential with the days left and the exact steps (docs/credentials.md,
// "Customer-managed credentials"). Provisioned integrations renew
// themselves: their step still warns (a renewal that did not happen), but
// nothing is announced.

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

// announcesExpiry reports whether in's credential entering the expiry
// window is announced (event, warnings metric): only customer-managed
// integrations, whose secrets someone has to replace by hand.
func announcesExpiry(in integration.Integration) bool {
	return in.Mode == integration.ModeCustomerManaged
}

// expiryWindow is how long before its end a credential of org's is in the
// expiry window. The one place the window is looked up: today the
// configured --expiry-warning (default 30 days); the organization's
// renewal threshold (issue 9 item 2) is meant to be read here.
func (s *Service) expiryWindow(_ context.Context, _ uuid.UUID) time.Duration {
	return s.cfg.ExpiryWarning
}

// daysLeft is the whole days from at until end (negative once expired).
func daysLeft(end, at time.Time) int {
	return int(end.Sub(at) / (24 * time.Hour))
}

// expiry judges the active credential's end date (or, in shared mode, the
// shared application's) against the window and fills in the remedy. With
// the application's credentials read from Entra (entra not nil), the
// active credential's end date is Entra's (entra_expiry.go).
func (s *Service) expiry(ctx context.Context, c *Check, t tenant.Tenant, in integration.Integration, now time.Time, entra []AppCredential) {
	var end *time.Time
	note := ""
	var mismatch *ExpiryMismatch
	if a, ok := in.Active(); ok {
		end, note, mismatch = entraExpiry(a, entra)
	}
	shared := false
	if sc, ok := s.integrations.(SecretChanges); ok {
		if e, ok := sc.SecretEndTime(ctx, in); ok {
			end, shared, note, mismatch = e, true, "", nil
		}
	}
	step, soon := expiryStep(end, now, s.expiryWindow(ctx, in.Org))
	if step.Status != StepPassed {
		step.Remedy = expiryRemedy(in, t, shared)
	}
	step.Message += note
	c.ExpiryMismatch = mismatch
	c.ExpiringSoon = soon
	c.add(step)
}

// expiryRemedy says what to do about a credential in the window or
// expired: who replaces it, and how.
func expiryRemedy(in integration.Integration, t tenant.Tenant, shared bool) string {
	name := resource.Integration{Org: in.Org, Tenant: in.Tenant, Integration: in.ID}.String()
	switch {
	case shared || in.Mode == integration.ModeShared:
		return "replace the organization's shared application secret (UpdateSharedApplication): every integration in shared mode uses it"
	case in.Mode == integration.ModeProvisioned:
		return "dzconnect renews provisioned credentials before they expire; if this persists, renewal is failing: " +
			"look at the integration's rotate operations, or start one with `dzctl credential rotate " + name + "`"
	}
	return fmt.Sprintf("dzconnect cannot renew a secret it did not create: in Entra tenant %s, create a new client secret "+
		"for application %s (App registrations > the application > Certificates & secrets > New client secret), then "+
		"give its Value to UpdateIntegration: `dzctl integration update %s --client-secret-file -` (optionally with "+
		"--secret-expire-time). dzconnect verifies the new secret before switching and keeps the current one until then; "+
		"afterwards delete the old secret in Entra.", t.EntraTenantID, in.ClientID, name)
}
