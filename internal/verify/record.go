package verify

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Unchanged is a check to record on the sweep's fast path, with the
// expectations under which recording it changes nothing but the last check
// time: the integration is still at Version, its state is the check's
// outcome, and, when WarnedCredential is set, that credential is still
// the active one and its expiry warning already went out. The store
// applies it, with other checks' in the same statement, or not at all.
type Unchanged struct {
	Check            Check
	Version          int64
	WarnedCredential uuid.UUID
}

// unchangedExpectation returns the fast-path expectations for c, checked
// on loaded (the integration as the check read it), or false when c needs
// the full path: an on-demand check (audited), a check without a version,
// a new outcome, or a warning to send.
func unchangedExpectation(c Check, loaded integration.Integration) (Unchanged, bool) {
	if c.Trigger != TriggerSchedule || c.IntegrationVersion == 0 || loaded.State != c.Outcome {
		return Unchanged{}, false
	}
	u := Unchanged{Check: c, Version: c.IntegrationVersion}
	if c.ExpiringSoon {
		a, ok := loaded.Active()
		if !ok || a.ID != c.Credential || a.ExpiryWarnTime == nil {
			return Unchanged{}, false
		}
		u.WarnedCredential = a.ID
	}
	return u, true
}

// decision is what recording a check writes, decided from the check and the
// integration as locked in the recording transaction.
type decision struct {
	stale  bool // the integration changed while the check ran: history only
	warn   bool // announce the active credential's expiry, once per credential
	audit  bool // an on-demand check is a caller's write
	events []string
}

func decide(c Check, in integration.Integration) decision {
	if c.IntegrationVersion != 0 && in.Version != c.IntegrationVersion {
		return decision{stale: true}
	}
	d := decision{audit: c.Trigger == TriggerAPI}
	if in.State != c.Outcome {
		d.events = append(d.events, event.StateChanged)
	}
	if a, ok := in.Active(); ok && c.ExpiringSoon && a.ExpiryWarnTime == nil &&
		(c.Credential == uuid.Nil || c.Credential == a.ID) {
		d.warn = true
		d.events = append(d.events, event.CredentialExpiring)
	}
	return d
}

// checkName formats a check's resource name.
func checkName(c Check) string {
	return resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String() + "/checks/" + c.ID.String()
}

// Record records a check that was run elsewhere (tests, tools): as Run
// does, on the integration as it is now.
func (s *Service) Record(ctx context.Context, c Check) (Result, error) {
	in, _, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), c.Org, c.Integration)
	if err != nil {
		return Result{}, err
	}
	return s.record(ctx, c, in)
}

// record stores c. An unchanged scheduled check (the sweep's usual case)
// takes one statement under expectations computed here; otherwise, in one
// transaction: the integration is read and locked, the check row written,
// and, unless the check is stale, the state set, the credential's expiry
// warning marked, the audit event appended and the events queued.
func (s *Service) record(ctx context.Context, c Check, loaded integration.Integration) (Result, error) {
	if u, ok := unchangedExpectation(c, loaded); ok {
		// Written together with other checks' that finish meanwhile (a
		// sweep's), each under its own expectations.
		done, err := s.fast.record(s, u)
		if err != nil {
			return Result{}, err
		}
		if done {
			in := loaded
			in.LastCheckTime = &c.End
			return Result{Check: c, Integration: in, Previous: c.Outcome}, nil
		}
	}
	var r Result
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		in, err := s.store.GetIntegrationForUpdate(ctx, tx, c.Org, c.Integration)
		if err != nil {
			return err
		}
		if err := s.store.InsertCheck(ctx, tx, c); err != nil {
			return err
		}
		d := decide(c, in)
		if d.stale {
			r = Result{Check: c, Integration: in, Previous: c.Outcome}
			return nil
		}
		out, err := s.store.SetIntegrationState(ctx, tx, c.Org, c.Integration, c.Outcome, c.End)
		if err != nil {
			return err
		}
		out.Credentials = in.Credentials
		active, _ := in.Active()
		if d.warn {
			if err := s.store.MarkCredentialWarned(ctx, tx, c.Org, active.ID, c.End); err != nil {
				return err
			}
			for k := range out.Credentials {
				if out.Credentials[k].ID == active.ID {
					out.Credentials[k].ExpiryWarnTime = &c.End
				}
			}
		}
		if d.audit {
			if err := s.audit.AppendAudit(ctx, tx, c.Org, checkName(c)); err != nil {
				return err
			}
		}
		for _, typ := range d.events {
			if err := s.notify.Notify(ctx, tx, c.Org, eventOf(typ, c, in, active)); err != nil {
				return err
			}
		}
		r = Result{Check: c, Integration: out, Previous: in.State}
		return nil
	})
	return r, err
}

// eventOf is the body of one event about c.
func eventOf(typ string, c Check, in integration.Integration, active integration.Credential) event.Event {
	return event.Event{
		Type: typ, Time: c.End, Organization: resource.Org{Org: c.Org}.String(),
		Integration: resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String(),
		Kind:        string(in.Kind), PreviousState: string(in.State), State: string(c.Outcome),
		Check: checkName(c), Summary: c.Summary, CredentialExpireTime: active.EndTime,
	}
}
