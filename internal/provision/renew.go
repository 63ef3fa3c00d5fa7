package provision

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/clock"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// TriggerRenewal marks a rotation started by automatic renewal
// (RotateParams.Trigger).
const TriggerRenewal = "renewal"

// RenewalBackoff is how long automatic renewal leaves a credential alone
// after it started a rotation for it (or found it could not): a rotation
// that fails is tried again a day later, not in a loop.
const RenewalBackoff = 24 * time.Hour

// renewalBatch bounds the candidates one renewal run looks at; the rest
// wait for the next run (due ones come first).
const renewalBatch = 500

// renewalRunBudget: a run stops starting new work after this, well within
// the job's timeout (and River's rescue).
const renewalRunBudget = 90 * time.Second

// RenewConfig tunes automatic renewal (docs/credentials.md "Automatic
// renewal").
type RenewConfig struct {
	// Interval is how often the leader runs the renewal job; default 1h.
	Interval time.Duration
	// Jitter spreads renewals: a credential is renewed when its remaining
	// lifetime falls below the threshold less its own offset in [0,
	// min(Jitter, threshold/4)), fixed per credential; 0: no spread.
	Jitter time.Duration
	// PerTenant is how many rotations may run at once in one customer
	// tenant before renewal starts another there; default 2.
	PerTenant int
	// ReadEvery is how often each provisioned credential's expiry date is
	// read from Entra; default 24h.
	ReadEvery time.Duration
	// Clock is what renewal judges expiry by (clock.System in every
	// deployment; tests shift it).
	Clock clock.Clock
	// ObserveThrottle returns ctx carrying f, which the Microsoft adapter
	// calls when Microsoft answers 429 + Retry-After (microsoft.
	// WithThrottleObserver); nil: throttles are only logged.
	ObserveThrottle func(ctx context.Context, f func(until time.Time)) context.Context
}

func (c RenewConfig) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return time.Hour
}

func (c RenewConfig) perTenant() int {
	if c.PerTenant > 0 {
		return c.PerTenant
	}
	return 2
}

func (c RenewConfig) readEvery() time.Duration {
	if c.ReadEvery > 0 {
		return c.ReadEvery
	}
	return 24 * time.Hour
}

// RenewalCandidate is an active credential of a provisioned integration
// that is due for renewal, or whose expiry date is due to be read from
// Entra (RenewalStore.ListRenewalCandidates).
type RenewalCandidate struct {
	Org, Tenant, Integration, Credential uuid.UUID
	EndTime, ExpiryReadTime              *time.Time
	Threshold                            time.Duration // the organization's
	WithinThreshold                      bool          // less than Threshold left (before jitter)
}

// RenewalStore is what automatic renewal reads and writes (postgres.DB).
// Its listing spans organizations (background work).
type RenewalStore interface {
	// ListRenewalCandidates lists active credentials of provisioned
	// integrations with less than their organization's threshold left at
	// now, or whose expiry was last read from Entra before readBefore, not
	// left alone until after now, without an unfinished
	// credential-changing operation, not in a tenant throttled after
	// realNow; due ones first.
	ListRenewalCandidates(ctx context.Context, tx uow.Tx, now, realNow, readBefore time.Time, limit int) ([]RenewalCandidate, error)
	// CountUnfinishedRotations counts unfinished rotate operations of org
	// whose target starts with targetPrefix (a tenant's name + "/").
	CountUnfinishedRotations(ctx context.Context, tx uow.Tx, org uuid.UUID, targetPrefix string) (int, error)
	// SetCredentialExpiryRead records the expiry date read from Entra (end)
	// and when it was read.
	SetCredentialExpiryRead(ctx context.Context, tx uow.Tx, org, id uuid.UUID, end *time.Time, readAt time.Time) (integration.Credential, error)
	// SetCredentialRenewalNotBefore makes renewal leave the credential
	// alone until t.
	SetCredentialRenewalNotBefore(ctx context.Context, tx uow.Tx, org, id uuid.UUID, t time.Time) (integration.Credential, error)
	// ThrottleTenant records that Microsoft asked the tenant to be left
	// alone until until (shared with the check batches).
	ThrottleTenant(ctx context.Context, tx uow.Tx, t jobs.TenantRef, until time.Time) error
}

// RenewArgs is the periodic renewal job.
type RenewArgs struct{}

// Kind implements river.JobArgs.
func (RenewArgs) Kind() string { return "renew_credentials" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RenewArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueMaintenance} }

// RenewExtension registers the renewal job: periodic on the elected
// leader, unique per period (a leader change does not run it twice), on
// the maintenance queue, retried with the shared policy. It is its own
// job, not a step of the check sweep: the sweep only enqueues per-tenant
// check batches that run with the integration's own credential, while
// renewal reads the application with the organization's provisioner and
// starts operations, on its own (slower) period.
func (s *Service) RenewExtension() jobs.Extension {
	every := s.d.Renew.interval()
	return jobs.Extension{
		Queue:    jobs.QueueMaintenance,
		Register: func(w *river.Workers) { river.AddWorker(w, &renewWorker{s: s}) },
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) {
				return RenewArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: every}}
			},
			&river.PeriodicJobOpts{ID: "renew_credentials", RunOnStart: true},
		)},
	}
}

type renewWorker struct {
	river.WorkerDefaults[RenewArgs]
	s *Service
}

func (w *renewWorker) Timeout(*river.Job[RenewArgs]) time.Duration { return 2 * time.Minute }

func (w *renewWorker) NextRetry(job *river.Job[RenewArgs]) time.Time {
	return time.Now().Add(jobs.Backoff(job.Attempt))
}

func (w *renewWorker) Work(ctx context.Context, _ *river.Job[RenewArgs]) error {
	_, err := w.s.Renew(ctx)
	return jobs.Classify(err)
}

// RenewReport is what one renewal run did.
type RenewReport struct {
	Read, Corrected, Started, Refused int
}

// Renew runs automatic renewal once (docs/credentials.md "Automatic
// renewal"): for each candidate, tenant by tenant, it reads the
// application from Entra with the organization's provisioner, corrects a
// recorded expiry date that differs from Entra's (audited, announced),
// and, when the credential is due, starts a rotation (renewOne) unless the
// tenant already has PerTenant rotations running. A tenant Microsoft
// throttles is left until its Retry-After ends.
func (s *Service) Renew(ctx context.Context) (RenewReport, error) {
	var rep RenewReport
	if s.d.Renewal == nil {
		return rep, nil
	}
	ctx = audit.WithCall(ctx, audit.Call{Actor: audit.SystemActor, Method: "renew_credentials"})
	now := s.d.Renew.Clock.Now()
	cands, err := s.d.Renewal.ListRenewalCandidates(ctx, s.d.Tx.Conn(), now, time.Now(), now.Add(-s.d.Renew.readEvery()), renewalBatch)
	if err != nil {
		return rep, err
	}
	budget := time.Now().Add(renewalRunBudget)
	for len(cands) > 0 && time.Now().Before(budget) {
		n := 1
		for n < len(cands) && cands[n].Org == cands[0].Org && cands[n].Tenant == cands[0].Tenant {
			n++
		}
		if err := s.renewTenant(ctx, cands[:n], &rep); err != nil {
			if ctx.Err() != nil {
				return rep, err
			}
			s.logger().WarnContext(ctx, "automatic renewal: tenant skipped", "organization", cands[0].Org, "tenant", cands[0].Tenant, "error", err)
		}
		cands = cands[n:]
	}
	if rep != (RenewReport{}) {
		s.logger().InfoContext(ctx, "automatic renewal", "read", rep.Read, "corrected", rep.Corrected, "started", rep.Started, "refused", rep.Refused)
	}
	return rep, nil
}

// renewTenant handles one tenant's candidates. Candidates are usually
// few per tenant (one per kind), so they are handled in turn.
func (s *Service) renewTenant(ctx context.Context, cands []RenewalCandidate, rep *RenewReport) error {
	org, tenantID := cands[0].Org, cands[0].Tenant
	tname := resource.Tenant{Org: org, Tenant: tenantID}.String()
	running, err := s.d.Renewal.CountUnfinishedRotations(ctx, s.d.Tx.Conn(), org, tname+"/")
	if err != nil {
		return err
	}
	var throttled time.Time
	if s.d.Renew.ObserveThrottle != nil {
		ctx = s.d.Renew.ObserveThrottle(ctx, func(until time.Time) {
			if until.After(throttled) {
				throttled = until
			}
		})
	}
	t, err := s.d.Tenants.GetTenant(ctx, s.d.Tx.Conn(), org, tenantID)
	if err != nil {
		return err
	}
	creds, ok, err := s.d.Consent.ForTenant(ctx, org, t)
	if err != nil {
		return err
	}
	var dir Directory
	if ok {
		if dir, err = s.d.Open(creds); err != nil {
			return err
		}
	}
	for _, c := range cands {
		now := s.d.Renew.Clock.Now()
		in, err := s.d.Integrations.GetIntegration(ctx, s.d.Tx.Conn(), org, c.Integration)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		cred, ok := in.Active()
		if !ok || cred.ID != c.Credential {
			continue // rotated meanwhile
		}
		target := resource.Integration{Org: org, Tenant: tenantID, Integration: in.ID}
		// 1. The expiry date from Entra (the provisioner reads the
		// application), corrected when it differs.
		if dir == nil {
			if _, err := s.d.Renewal.SetCredentialExpiryRead(ctx, s.d.Tx.Conn(), org, cred.ID, cred.EndTime, now); err != nil {
				return err
			}
		} else {
			end, err := s.readExpiry(ctx, dir, target, in, cred, now, rep)
			switch {
			case err == nil:
				cred.EndTime = end
			case !throttled.IsZero():
				// Retry-After: the tenant's turn ends; the listing skips it
				// until then.
				return s.throttleTenant(ctx, org, tenantID, throttled)
			case ctx.Err() != nil:
				return err
			default:
				// This application could not be read (e.g. removed from
				// Entra): the attempt is recorded, so it does not crowd out
				// the others, and renewal judges by the recorded date.
				s.logger().WarnContext(ctx, "automatic renewal: the application could not be read from Entra",
					"integration", target.String(), "error", err)
				if _, err := s.d.Renewal.SetCredentialExpiryRead(ctx, s.d.Tx.Conn(), org, cred.ID, cred.EndTime, now); err != nil {
					return err
				}
			}
		}
		if throttled.After(time.Now()) {
			return s.throttleTenant(ctx, org, tenantID, throttled)
		}
		// 2. Due? Then a rotation, within the tenant's limit.
		if !renewalDue(now, cred, c.Threshold, s.d.Renew.Jitter) {
			continue
		}
		if running >= s.d.Renew.perTenant() {
			continue // next run; the credential stays a candidate
		}
		started, err := s.renewOne(ctx, target, cred.ID, now, dir == nil)
		if err != nil {
			return err
		}
		if started {
			running++
			rep.Started++
		} else {
			rep.Refused++
		}
	}
	return nil
}

func (s *Service) throttleTenant(ctx context.Context, org, tenantID uuid.UUID, until time.Time) error {
	return s.d.Renewal.ThrottleTenant(ctx, s.d.Tx.Conn(), jobs.TenantRef{Org: org, Tenant: tenantID}, until)
}

// renewOne starts a rotation for the integration's active credential
// cred, through the path RotateCredential takes (startRotation), in one
// transaction with the decision's record: under the integration's row
// lock, if cred is still active and nothing else runs on the integration,
// the operation starts (audited as by the system, visible in
// ListOperations) and the credential is left alone by renewal until now +
// RenewalBackoff. An integration that cannot be rotated (rotatable), or a
// provisioner no longer consented, is recorded the same way (not retried
// before a day) and announced (credential_renewal_failed). It reports
// whether a rotation started.
func (s *Service) renewOne(ctx context.Context, target resource.Integration, credID uuid.UUID, now time.Time, notConsented bool) (bool, error) {
	name := target.String()
	next := now.Add(RenewalBackoff)
	started := false
	err := s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, target.Org, target.Integration)
		if err != nil {
			return err
		}
		if a, ok := in.Active(); !ok || a.ID != credID {
			return nil
		}
		running, err := s.d.Operations.Unfinished(ctx, tx, target.Org, name)
		if err != nil || len(running) > 0 {
			return err
		}
		if _, err := s.d.Renewal.SetCredentialRenewalNotBefore(ctx, tx, target.Org, credID, next); err != nil {
			return err
		}
		typ, refusal := rotatable(name, in, "")
		if refusal == nil && notConsented {
			refusal = apperr.New(apperr.FailedPrecondition,
				"the organization's provisioner is no longer consented in the tenant: have a tenant administrator consent it again (GetAdminConsentLink), or rotate the secret by hand")
		}
		if refusal != nil {
			msg := refusal.Error()
			var ae *apperr.Error
			if errors.As(refusal, &ae) {
				msg = ae.Message
			}
			return s.notify(ctx, tx, target, in, event.Event{Type: event.CredentialRenewalFailed,
				Credential: credentialName(target, credID), NextAttemptTime: &next,
				Summary: "automatic renewal cannot rotate the credential: " + msg})
		}
		if _, err := s.startRotation(ctx, tx, target, in, operation.NewID(), uuid.Nil, typ, TriggerRenewal); err != nil {
			return err
		}
		started = true
		return nil
	})
	if apperr.Is(err, apperr.AlreadyExists) {
		return false, nil // a rotation or (de)provision started meanwhile (the partial unique index)
	}
	return started, err
}

// renewalFailed announces, in the transaction that ends a failed or
// canceled renewal rotation (rotateFinished), that the credential was not
// renewed and when renewal tries again.
func (s *Service) renewalFailed(ctx context.Context, tx uow.Tx, op operation.Operation, p RotateParams) error {
	target := resource.Integration{Org: op.Org, Tenant: p.Tenant, Integration: p.Integration}
	in, err := s.d.Integrations.GetIntegration(ctx, tx, op.Org, p.Integration)
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ev := event.Event{Type: event.CredentialRenewalFailed, Credential: credentialName(target, p.Replaces),
		Operation: op.Name(), OperationKind: op.Kind, Summary: "automatic renewal's rotation " + string(op.State)}
	for _, c := range in.Credentials {
		if c.ID == p.Replaces {
			ev.NextAttemptTime = c.RenewalNotBefore
		}
	}
	if op.Error != nil {
		ev.Summary += ": " + op.Error.Message
		ev.Error = &event.OperationError{Code: op.Error.Code, Reason: op.Error.Reason, Message: op.Error.Message,
			Remedy: op.Error.Remedy, Step: op.Error.Step}
	}
	return s.notify(ctx, tx, target, in, ev)
}

func (s *Service) notify(ctx context.Context, tx uow.Tx, target resource.Integration, in integration.Integration, ev event.Event) error {
	if s.d.Notifier == nil {
		return nil
	}
	ev.Time = time.Now()
	ev.Organization = resource.Org{Org: target.Org}.String()
	ev.Integration = target.String()
	ev.Kind = string(in.Kind)
	ev.State = string(in.State)
	return s.d.Notifier.Notify(ctx, tx, target.Org, ev)
}

func (s *Service) logger() *slog.Logger {
	if s.d.Log != nil {
		return s.d.Log
	}
	return slog.New(slog.DiscardHandler)
}
