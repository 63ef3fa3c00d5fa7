package provision

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Automatic renewal's reading of expiry dates from Entra, and its pure
// rules (renew.go runs them).

// readExpiry reads the application and returns the credential's expiry
// date as Entra has it (passwordCredentials or keyCredentials, matched by
// keyId), recording it with the time it was read. A date that differs
// from the recorded one (by a second or more) is corrected in one
// transaction with its audit event and the credential_expiry_mismatch
// event. A credential Entra no longer has keeps its recorded date (the
// checks report it: its token fails) and is logged.
func (s *Service) readExpiry(ctx context.Context, dir Directory, target resource.Integration, in integration.Integration,
	cred integration.Credential, now time.Time, rep *RenewReport) (*time.Time, error) {
	app, err := dir.GetApplication(ctx, in.AppObjectID.UUID.String())
	if err != nil {
		return nil, err
	}
	rep.Read++
	var entra *time.Time
	for _, p := range app.Passwords {
		if cred.HasKeyID(p.KeyID) && !p.End.IsZero() {
			e := p.End
			entra = &e
		}
	}
	for _, k := range app.Keys {
		if cred.HasKeyID(k.KeyID) && !k.End.IsZero() {
			e := k.End
			entra = &e
		}
	}
	if entra == nil {
		s.logger().WarnContext(ctx, "automatic renewal: the active credential is not on the application in Entra",
			"integration", target.String(), "credential", cred.ID)
		_, err := s.d.Renewal.SetCredentialExpiryRead(ctx, s.d.Tx.Conn(), target.Org, cred.ID, cred.EndTime, now)
		return cred.EndTime, err
	}
	if cred.EndsAt(*entra) {
		_, err := s.d.Renewal.SetCredentialExpiryRead(ctx, s.d.Tx.Conn(), target.Org, cred.ID, cred.EndTime, now)
		return cred.EndTime, err
	}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if _, err := s.d.Renewal.SetCredentialExpiryRead(ctx, tx, target.Org, cred.ID, entra, now); err != nil {
			return err
		}
		if err := s.d.Audit.AppendAudit(ctx, tx, target.Org, credentialName(target, cred.ID)); err != nil {
			return err
		}
		return s.notify(ctx, tx, target, in, event.Event{Type: event.CredentialExpiryMismatch,
			Credential: credentialName(target, cred.ID), CredentialExpireTime: entra, RecordedExpireTime: cred.EndTime,
			Summary: "the credential's expiry date in Entra differs from the recorded one; the record now holds Entra's"})
	})
	if err != nil {
		return nil, err
	}
	rep.Corrected++
	s.logger().InfoContext(ctx, "automatic renewal: expiry date corrected from Entra", "integration", target.String(),
		"credential", cred.ID, "recorded", cred.EndTime, "entra", *entra)
	return entra, nil
}

// renewalDue reports whether c should be renewed at now: its remaining
// lifetime is below the effective threshold less its jitter. The effective
// threshold is the organization's, but at most half the credential's
// lifetime (a policy that allows only short secrets would otherwise make
// every new secret due at once: a rotation loop). The jitter is fixed per
// credential (a hash of its ID) in [0, min(jitter, effective/4)), so
// credentials made the same day are renewed over that window, not in the
// same run. Without a known expiry date nothing is due.
func renewalDue(now time.Time, c integration.Credential, threshold, jitter time.Duration) bool {
	if c.EndTime == nil {
		return false
	}
	eff := threshold
	start := c.CreateTime
	if c.StartTime != nil {
		start = *c.StartTime
	}
	if life := c.EndTime.Sub(start); life > 0 && life/2 < eff {
		eff = life / 2
	}
	return c.EndTime.Sub(now) < eff-jitterFor(c.ID, min(jitter, eff/4))
}

// jitterFor is id's fixed offset in [0, window).
func jitterFor(id uuid.UUID, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write(id[:])
	return time.Duration(h.Sum64() % uint64(window))
}

func credentialName(target resource.Integration, id uuid.UUID) string {
	return target.String() + "/credentials/" + id.String()
}
