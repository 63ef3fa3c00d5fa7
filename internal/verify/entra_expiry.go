package verify

// Expiry from Entra (issue 10 item 7): when the organization's provisioner
// is consented in the tenant (it reads the application anyway, for the
// granted permissions), the expiry step judges the active credential's
// endDateTime as Entra has it (the application's passwordCredentials or
// keyCredentials, matched by keyId), not the date typed when the
// integration was created. A date that differs from the recorded one is
// reported in the step, and recording the check corrects the record and
// announces integration.credential_expiry_mismatch once: the next check
// finds them equal and says nothing more. Customer-managed integrations
// benefit as well as provisioned ones (those are also corrected by
// automatic renewal's reads, internal/provision/renew_expiry.go).

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// AppCredential is one credential of an application as Entra has it
// (metadata only).
type AppCredential struct {
	KeyID       string
	Hint        string // password credentials: the first characters of the secret
	End         time.Time
	Certificate bool // a keyCredential
}

// CredentialReader is an optional extension of Directory: the
// application's credentials, read with the provisioner.
type CredentialReader interface {
	// ApplicationCredentials reads the credentials of the application
	// whose client ID is clientID. Errors are *mserr.Error.
	ApplicationCredentials(ctx context.Context, clientID string) ([]AppCredential, error)
}

// ExpiryMismatch is an active credential whose end date in Entra differs
// from the recorded one.
type ExpiryMismatch struct {
	Credential uuid.UUID
	Entra      time.Time
	Recorded   *time.Time
}

// ExpiryCorrector is an optional extension of Store: it writes a
// credential's end date as read from Entra (and when it was read).
// Implemented by internal/postgres.
type ExpiryCorrector interface {
	SetCredentialExpiryRead(ctx context.Context, tx uow.Tx, org, id uuid.UUID, end *time.Time, readAt time.Time) (integration.Credential, error)
}

// entraEnd finds cred among Entra's credentials of its application: by key
// ID, or, when its key ID is not known (a customer-managed secret), by its
// hint when exactly one password credential has it.
func entraEnd(cred integration.Credential, creds []AppCredential) (time.Time, bool) {
	if cred.KeyID.Valid {
		for _, c := range creds {
			if cred.HasKeyID(c.KeyID) && !c.End.IsZero() {
				return c.End, true
			}
		}
		return time.Time{}, false
	}
	if cred.Hint == "" || cred.Type == integration.CredentialCertificate {
		return time.Time{}, false
	}
	var found []time.Time
	for _, c := range creds {
		if !c.Certificate && c.Hint != "" && c.Hint == cred.Hint && !c.End.IsZero() {
			found = append(found, c.End)
		}
	}
	if len(found) != 1 {
		return time.Time{}, false
	}
	return found[0], true
}

// entraExpiry returns the end date to judge a's expiry by and what the
// step should add: Entra's date when creds (read with the provisioner;
// nil when not read) has the credential, with the mismatch when it
// differs from the recorded one by a second or more.
func entraExpiry(a integration.Credential, creds []AppCredential) (end *time.Time, note string, mm *ExpiryMismatch) {
	end = a.EndTime
	if creds == nil {
		return end, "", nil
	}
	e, ok := entraEnd(a, creds)
	if !ok {
		return end, "", nil
	}
	e = e.UTC()
	if a.EndsAt(e) {
		return &e, " (end date confirmed in Entra)", nil
	}
	recorded := "none"
	if a.EndTime != nil {
		recorded = a.EndTime.UTC().Format(time.RFC3339)
	}
	note = fmt.Sprintf("; Entra's end date %s differs from the recorded one (%s): judged by Entra's, the record is corrected",
		e.Format(time.RFC3339), recorded)
	return &e, note, &ExpiryMismatch{Credential: a.ID, Entra: e, Recorded: a.EndTime}
}

// correctsExpiry reports whether recording c corrects the recorded end
// date of in's active credential: c found a mismatch on it, and the record
// still differs.
func correctsExpiry(c Check, in integration.Integration) bool {
	m := c.ExpiryMismatch
	if m == nil {
		return false
	}
	a, ok := in.Active()
	if !ok || a.ID != m.Credential {
		return false
	}
	return !a.EndsAt(m.Entra)
}

// correctExpiry writes the end date c read from Entra on the active
// credential (in the recording transaction, with its audit event) and
// updates out's copy of it.
func (s *Service) correctExpiry(ctx context.Context, tx uow.Tx, c Check, out *integration.Integration) error {
	w, ok := s.store.(ExpiryCorrector)
	if !ok {
		return nil
	}
	m := c.ExpiryMismatch
	end := m.Entra
	if _, err := w.SetCredentialExpiryRead(ctx, tx, c.Org, m.Credential, &end, c.End); err != nil {
		return err
	}
	if err := s.audit.AppendAudit(ctx, tx, c.Org, resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String()+
		"/credentials/"+m.Credential.String()); err != nil {
		return err
	}
	for k := range out.Credentials {
		if out.Credentials[k].ID == m.Credential {
			out.Credentials[k].EndTime = &end
		}
	}
	return nil
}
