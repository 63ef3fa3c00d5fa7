package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/crashpoint"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Kill points of UpdateSecret (internal/crashpoint; the kill test
// internal/e2e/fallback_kill_test.go): after the new value is in Vault,
// and after it was tried, before the switch or the refusal is written.
var (
	CrashUpdateSecretStored = crashpoint.Name("update-secret", "vault", "after_write")
	CrashUpdateSecretTried  = crashpoint.Name("update-secret", "verify", "returned")
)

// replacedMeanwhile refuses to activate a new secret when the integration's
// active credential is no longer the one (base; uuid.Nil for none) the
// replacement started from: another replacement was verified and activated
// in between.
func replacedMeanwhile(cur Integration, base uuid.UUID) error {
	var now uuid.UUID
	if a, ok := cur.Active(); ok {
		now = a.ID
	}
	if now == base {
		return nil
	}
	return apperr.New(apperr.Aborted,
		"a concurrent secret replacement for this integration was verified and activated first; this secret was not stored: read the integration and retry if this one should win").
		WithReason("CONCURRENT_UPDATE")
}

// Verifier proves a credential before it replaces the active one
// (implemented by package verify: Service.TryCredential).
type Verifier interface {
	// TryCredential runs the integration's checks — a token per API and
	// every probe — with c only (its value read from Vault at c's path and
	// version), recording nothing: the integration's state, last check and
	// events stay the active credential's.
	TryCredential(ctx context.Context, org, id uuid.UUID, c Credential) (Trial, error)
}

// Trial is the verdict on a credential tried before it is active. It never
// carries a secret or a token.
type Trial struct {
	Outcome State
	Summary string
	// The first step that did not pass, when the outcome is neither
	// healthy nor degraded: its name, Microsoft's code, message and remedy.
	Step, Code, Message, Remedy string
	// CredentialRefused: Microsoft refused the credential itself (no
	// token: an invalid or expired secret, an unknown application).
	CredentialRefused bool
	// MicrosoftUnavailable: the credential could not be proven because
	// Microsoft did not answer conclusively (a timeout, 5xx or throttling
	// on a token request): retryable, nothing is known against it.
	MicrosoftUnavailable bool
	// Record records the trial as the integration's check, once the
	// credential is active and the integration at version (nil: it cannot
	// be recorded).
	Record func(ctx context.Context, version int64) error
}

// Verified reports whether the tried credential works (healthy, or
// degraded: it works with warnings).
func (t Trial) Verified() bool { return t.Outcome == StateHealthy || t.Outcome == StateDegraded }

// SecretChange is what UpdateSecret did.
type SecretChange struct {
	Integration Integration
	// Replaced is the credential the new secret replaced, now removed (its
	// Vault value's destruction queued), when there was an active one.
	Replaced *Credential
	// NextStep is what the caller has to do: delete the replaced secret in
	// Entra, which dzconnect cannot do in a customer-made application.
	NextStep string
}

// OnDemandReserver is an optional extension of Verifier (package verify):
// it bounds on-demand checks, and a use case that will try a credential
// reserves its slot before writing anything; the returned context carries
// it to TryCredential.
type OnDemandReserver interface {
	ReserveOnDemand(ctx context.Context, org uuid.UUID) (context.Context, func(), error)
}

// UseVerifier sets what tries a new secret before it replaces the active
// one. Without it, UpdateSecret refuses (a secret nobody tried never
// replaces a working one).
func (s *Service) UseVerifier(v Verifier) { s.verifier = v }

// UpdateSecret replaces the integration's client secret with a new one,
// keeping the current credential as the fallback until the new one is
// verified, so a typo never takes an integration down. mutate applies the
// request's other changes (and the new credential's metadata) as Update's
// does.
//
// Write order (a crash or failure at any point leaves the current
// credential active and no orphan secret in Vault):
//  1. One transaction, under the integration's row lock: the etag is
//     checked, mutate validated on the row, and the new credential
//     inserted as pending with its metadata and its own Vault path, not
//     recorded as stored (secret_version 0). A crash here leaves an empty
//     pending row the reaper removes.
//  2. The secret is written to Vault at that path. From here until step 4
//     or 5 commits, a crash leaves a pending row "not stored" and a value
//     at its path: the reaper deletes the row and queues the value's
//     destruction in one transaction (pending-ttl).
//  3. The new secret is tried with nothing written (Verifier: a token per
//     API and every probe with the new secret only, its value read back
//     from Vault). Microsoft refusing it as possibly not replicated yet
//     (AADSTS7000215 right after a secret is made) is tried again, with
//     backoff, for up to VerifyWait.
//  4. Refused (broken, blocked, still propagating): one transaction
//     deletes the pending row, queues the value's destruction and appends
//     the audit event; the caller gets InvalidArgument (Microsoft refused
//     the secret) or FailedPrecondition naming client_secret, with
//     Microsoft's code and remedy. The integration, its state and its
//     active credential are untouched.
//  5. Verified: one transaction, under the row lock: the etag is checked
//     again, and (with or without an etag) the active credential must
//     still be the one this replacement began with — a concurrent
//     replacement that activated its secret meanwhile wins, and this one
//     is refused with Aborted (CONCURRENT_UPDATE) instead of silently
//     replacing the secret the other caller was just told is active;
//     mutate is applied; the active credential (and any retiring
//     one left by the former flow) is marked removed with its value's
//     destruction queued — dzconnect cannot delete a customer-made secret
//     in Entra, so NextStep tells the caller to; the new one becomes
//     active at its Vault version with its metadata; the version (etag)
//     changes; the audit event is appended.
//  6. The trial is recorded as the integration's check (its state, events,
//     expiry warning), unless the same request changed what a check
//     covers (kind-dependent settings): then the state is unverified and
//     the next check decides. A failure here only leaves the previous
//     state until the next check.
func (s *Service) UpdateSecret(ctx context.Context, org, id uuid.UUID, version int64, mutate Mutation, secret string) (SecretChange, error) {
	if s.verifier == nil {
		return SecretChange{}, apperr.New(apperr.Internal, "no verifier configured: a new secret cannot be tried")
	}
	// The trial is an on-demand check: its slot is taken first, so that a
	// busy replica or organization refuses the update (CHECKS_BUSY) before
	// anything is written.
	if r, ok := s.verifier.(OnDemandReserver); ok {
		held, release, err := r.ReserveOnDemand(ctx, org)
		if err != nil {
			return SecretChange{}, err
		}
		defer release()
		ctx = held
	}
	var (
		cred   Credential
		tenant uuid.UUID
		// base is the credential active when this replacement began: the
		// one it replaces.
		base uuid.UUID
	)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetIntegrationForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if cur.Mode == ModeShared {
			return apperr.New(apperr.FailedPrecondition,
				"the integration uses the organization's shared application: replace its secret with UpdateSharedApplication, which all its integrations use").
				WithReason("SHARED_APPLICATION_SECRET")
		}
		var meta CredentialMeta
		if err := mutate(&cur, &meta); err != nil {
			return err
		}
		tenant = cur.Tenant
		if a, ok := cur.Active(); ok {
			base = a.ID
		}
		cred, err = s.store.InsertCredential(ctx, tx, newCredential(org, id, meta))
		return err
	})
	if err != nil {
		return SecretChange{}, err
	}
	v, err := WriteSecret(ctx, s.secrets, cred.SecretPath, secret, 0)
	if err != nil {
		s.abandon(ctx, cred)
		return SecretChange{}, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable), "storing the new client secret in Vault failed; nothing was changed")
	}
	crashpoint.Hit(CrashUpdateSecretStored)
	// In memory only: the row stays "not stored" until it is activated, so
	// after a crash the reaper removes it and queues its value's
	// destruction.
	cred.SecretVersion = v
	trial, err := s.tryNew(ctx, org, id, cred)
	if err != nil {
		s.abandon(ctx, cred)
		return SecretChange{}, err
	}
	crashpoint.Hit(CrashUpdateSecretTried)
	if !trial.Verified() {
		s.refuse(ctx, cred, tenant)
		return SecretChange{}, refusal(trial)
	}
	var (
		out      SecretChange
		recheck  bool
		clientID uuid.UUID
	)
	err = s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		out = SecretChange{}
		cur, err := s.store.GetIntegrationForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := replacedMeanwhile(cur, base); err != nil {
			return err
		}
		before := cur
		var meta CredentialMeta
		if err := mutate(&cur, &meta); err != nil {
			return err
		}
		clientID = cur.ClientID
		for _, c := range cur.Credentials {
			// A provisioned credential already retiring keeps its overlap:
			// its retire_credential job removes it from Entra and Vault.
			if c.State == CredentialActive || (c.State == CredentialRetiring && c.Source != SourceProvisioned) {
				if _, err := s.store.SetCredentialState(ctx, tx, org, c.ID, CredentialRemoved); err != nil {
					return err
				}
				if err := s.gc.QueueDestroy(ctx, tx, org, c.SecretPath); err != nil {
					return err
				}
				if c.State == CredentialActive {
					replaced := c
					replaced.State = CredentialRemoved
					out.Replaced = &replaced
				}
			}
		}
		active, err := s.store.ActivateCredential(ctx, tx, org, cred.ID, v)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.New(apperr.Aborted, "the update took longer than the pending TTL and was rolled back; retry it")
		}
		if err != nil {
			return err
		}
		if _, err := s.store.UpdateCredential(ctx, tx, active.withMeta(meta)); err != nil {
			return err
		}
		recheck = !sameCheckPlan(before, cur)
		if recheck {
			cur.State = StateUnverified
		}
		if _, err := s.store.UpdateIntegration(ctx, tx, cur); err != nil {
			return err
		}
		if err := s.audit.AppendAudit(ctx, tx, org, integrationName(org, cur.Tenant, id)); err != nil {
			return err
		}
		out.Integration, err = s.store.GetIntegration(ctx, tx, org, id)
		return err
	})
	if err != nil {
		// Deleted, reaped, refused or changed meanwhile: the new secret
		// belongs to nothing (a delete may already have destroyed the path
		// before the write landed, so its destruction is queued again).
		s.abandon(ctx, cred)
		return SecretChange{}, err
	}
	if out.Replaced != nil {
		out.NextStep = deleteInEntra(*out.Replaced, clientID)
	}
	if !recheck && trial.Record != nil {
		if err := trial.Record(ctx, out.Integration.Version); err != nil {
			s.log.WarnContext(ctx, "recording the new secret's verification as a check failed; the next check sets the state", "error", err)
		} else if in, err := s.store.GetIntegration(ctx, s.tx.Conn(), org, id); err == nil {
			out.Integration = in
		}
	}
	return out, nil
}

// tryNew tries c, again with backoff for up to verifyWait while Microsoft
// answers as if it had not replicated the secret yet (propagating).
func (s *Service) tryNew(ctx context.Context, org, id uuid.UUID, c Credential) (Trial, error) {
	deadline := s.now().Add(s.verifyWait)
	wait := 500 * time.Millisecond
	for {
		tr, err := s.verifier.TryCredential(ctx, org, id, c)
		if err != nil || tr.Outcome != StatePropagating || !s.now().Add(wait).Before(deadline) {
			return tr, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			kind := apperr.Canceled
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				kind = apperr.DeadlineExceeded
			}
			return Trial{}, apperr.Wrap(ctx.Err(), kind, "the call ended while the new secret was being verified; nothing was changed")
		case <-t.C:
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// refuse removes a new credential that failed verification and queues its
// value's destruction, with the audit event of the refused call, in one
// transaction: the only rows a refused update leaves are the audit event
// and the queued destruction.
func (s *Service) refuse(ctx context.Context, c Credential, tenant uuid.UUID) {
	ctx = context.WithoutCancel(ctx)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.DeleteCredential(ctx, tx, c.Org, c.ID); err != nil {
			return err
		}
		if err := s.gc.QueueDestroy(ctx, tx, c.Org, c.SecretPath); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, c.Org, integrationName(c.Org, tenant, c.Integration))
	})
	if err != nil {
		s.log.ErrorContext(ctx, "removing a refused credential failed; the reaper will remove it", "path", c.SecretPath, "error", err)
	}
}

// refusal is the caller's error for a new secret that did not verify. It
// names client_secret and carries Microsoft's code and remedy.
func refusal(t Trial) error {
	finding := t.Summary
	if t.Step != "" {
		finding = strings.TrimSpace(t.Step + ": " + t.Code + " " + t.Message)
	}
	const kept = "the integration keeps its current secret"
	var (
		e    *apperr.Error
		desc string
	)
	switch {
	case t.MicrosoftUnavailable:
		return apperr.New(apperr.Unavailable, "Microsoft did not answer while the new client secret was being verified (%s); %s: retry the update", finding, kept).
			WithReason("MICROSOFT_UNAVAILABLE").WithMetadata("outcome", string(t.Outcome))
	case t.CredentialRefused:
		e = apperr.New(apperr.InvalidArgument, "Microsoft refused the new client secret (%s); %s", finding, kept).
			WithReason("CREDENTIAL_REFUSED")
		desc = "Microsoft refused this secret: give the secret's Value (not its Secret ID) of the integration's application"
		if t.Outcome == StatePropagating {
			desc += "; if it was created moments ago, Entra may still be replicating it: retry in a minute"
		}
	case t.Outcome == StateBlockedByPolicy:
		e = apperr.New(apperr.FailedPrecondition, "a customer policy blocks the new client secret (%s); %s", finding, kept).
			WithReason("CREDENTIAL_BLOCKED_BY_POLICY")
		desc = "a Conditional Access or app-management policy blocks this secret"
	default:
		e = apperr.New(apperr.FailedPrecondition, "the integration does not work with the new client secret (%s); %s", finding, kept).
			WithReason("CREDENTIAL_NOT_VERIFIED")
		desc = "the integration's checks fail with this secret"
	}
	if t.Remedy != "" {
		desc += " (" + t.Remedy + ")"
	}
	e.Violations = []apperr.FieldViolation{{Field: "client_secret", Description: desc}}
	if t.Code != "" {
		e = e.WithMetadata("error_code", t.Code)
	}
	return e.WithMetadata("outcome", string(t.Outcome))
}

// deleteInEntra says how to delete a replaced secret in Entra.
func deleteInEntra(c Credential, clientID uuid.UUID) string {
	var which []string
	if c.KeyID.Valid {
		which = append(which, "Secret ID "+c.KeyID.UUID.String())
	}
	if c.Hint != "" {
		which = append(which, "value starting "+c.Hint)
	}
	if c.EndTime != nil {
		which = append(which, "expiring "+c.EndTime.UTC().Format(time.DateOnly))
	}
	id := ""
	if len(which) > 0 {
		id = " (" + strings.Join(which, ", ") + ")"
	}
	return fmt.Sprintf("Delete the previous client secret%s of application %s in Entra (App registrations > the application > "+
		"Certificates & secrets): dzconnect no longer uses it and destroyed its copy, but cannot remove a secret "+
		"from an application it did not create.", id, clientID)
}

// sameCheckPlan reports whether a and b are checked the same way (kind,
// features, Sentinel workspace, application): then a check run on a is
// valid for b.
func sameCheckPlan(a, b Integration) bool {
	if a.Kind != b.Kind || a.ClientID != b.ClientID || len(a.Features) != len(b.Features) {
		return false
	}
	for i := range a.Features {
		if a.Features[i] != b.Features[i] {
			return false
		}
	}
	if (a.Sentinel == nil) != (b.Sentinel == nil) {
		return false
	}
	return a.Sentinel == nil || *a.Sentinel == *b.Sentinel
}
