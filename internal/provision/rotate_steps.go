package provision

import (
	"context"
	"time"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// The rotate operation's steps, in order (docs/credentials.md).
const (
	RotateStepPolicy   = "policy"        // a: fit the new secret's lifetime
	RotateStepSecret   = "client-secret" // a+b: addPassword, Vault, pending row
	RotateStepCert     = "certificate"   // a+b, certificates: key pair, Vault, keyCredentials, pending row (rotate_cert.go)
	RotateStepVerify   = "verify"        // c: a token and the probes with the new secret only
	RotateStepActivate = "activate"      // d: new active, old retiring until the overlap ends
)

// RotateKind returns the rotate operation kind.
func (s *Service) RotateKind() operation.Kind {
	return operation.Kind{
		Name: RotateKindName,
		Steps: []operation.Step{
			{Name: RotateStepPolicy, Run: s.rotatePolicy},
			{Name: RotateStepSecret, Run: s.rotateSecret},
			{Name: RotateStepCert, Run: s.rotateCertificate},
			{Name: RotateStepVerify, Run: s.rotateVerify, MaxAttempts: 14},
			{Name: RotateStepActivate, Run: s.rotateActivate},
		},
		Result:   s.rotateResult,
		Finished: s.rotateFinished,
	}
}

// rotatePolicy reads the app-management policy that governs the
// application (its own, else the tenant default) and fits the new
// secret's lifetime, as provisioning's policy step does. Idempotent: a read.
func (s *Service) rotatePolicy(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p RotateParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	pol, _, err := r.dir.AppManagementPolicyFor(ctx, r.p.UniqueName)
	if err != nil {
		return nil, err
	}
	if p.certificateType() {
		// A certificate's validity: at most two years, within the policy's
		// asymmetricKeyLifetime (less the same skew margin as secrets).
		life, err := FitLifetime(0, pol.KeyMaxLifetime)
		if err != nil {
			return nil, operation.Fail(apperr.FailedPrecondition, "blocked-by-policy",
				"Have a tenant administrator allow a longer certificate lifetime (asymmetricKeyLifetime) in the tenant's app-management policy.",
				"the tenant's app-management policy: %s", err)
		}
		return outputs(policyOut{PolicyMaxLifetime: pol.KeyMaxLifetime, CertificateLifetimeSeconds: int64(life.Seconds())})
	}
	if pol.PasswordAdditionBlocked {
		return nil, operation.Fail(apperr.FailedPrecondition, "blocked-by-policy",
			"Have a tenant administrator exempt the application from the passwordAddition restriction of the tenant's app-management policy, then rotate again; the current secret stays active.",
			"the tenant's app-management policy no longer allows client secrets (restriction passwordAddition)")
	}
	life, err := FitLifetime(0, pol.PasswordMaxLifetime)
	if err != nil {
		return nil, operation.Fail(apperr.FailedPrecondition, "blocked-by-policy",
			"Have a tenant administrator allow a longer secret lifetime in the tenant's app-management policy.",
			"the tenant's app-management policy: %s", err)
	}
	return outputs(policyOut{PolicyMaxLifetime: pol.PasswordMaxLifetime, SecretLifetimeSeconds: int64(life.Seconds())})
}

// rotateSecret adds the new client secret. The write order and the re-run
// rules are provisioning's client-secret step's (stepClientSecret): the
// credential row has a fixed ID per operation (CredentialID), passwords
// are tagged with the operation (PasswordTag), so
//
//  1. a recorded row (a crash after 4) is adopted, other tagged passwords removed;
//  2. otherwise tagged passwords are orphans of a crashed attempt: removed;
//  3. addPassword with the tag;
//  4. Vault (check-and-set on the credential's own path: version 1, or a
//     newer one over an earlier attempt's), then the row, pending (stored,
//     not yet verified). Vault refusing removes the new password from
//     Entra before the step fails.
//
// The active credential is not touched: checks and tokens keep using it.
func (s *Service) rotateSecret(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p RotateParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	if p.certificateType() {
		return nil, operation.Skip("a certificate rotation (step certificate)")
	}
	var pol policyOut
	if _, err := sc.Output(RotateStepPolicy, &pol); err != nil {
		return nil, err
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	tag, credID := PasswordTag(sc.Operation), CredentialID(sc.Operation)
	// 1. Already recorded: adopt.
	c, err := s.d.Rotation.GetCredentialForUpdate(ctx, s.d.Tx.Conn(), sc.Org, credID)
	if err == nil {
		if err := s.removeTagged(ctx, r, p.AppObjectID, tag, c.KeyID.UUID.String()); err != nil {
			return nil, err
		}
		return outputs(secretOut{Credential: c.ID.String(), KeyID: c.KeyID.UUID.String(), Hint: c.Hint, EndTime: deref(c.EndTime), VaultVersion: c.SecretVersion})
	}
	if !apperr.Is(err, apperr.NotFound) {
		return nil, err
	}
	// 2.–4. Orphans removed, the new password, Vault, then the row,
	// pending (stored, not yet verified).
	return s.addTaggedPassword(ctx, r, sc, RotateStepSecret, p.AppObjectID, p.Integration, pol.SecretLifetimeSeconds, false,
		func(ctx context.Context, tx uow.Tx, c integration.Credential, version int64) error {
			c.SecretVersion = version
			_, err := s.d.Rotation.InsertStoredPendingCredential(ctx, tx, c)
			return err
		})
}

// rotateVerify runs the integration's checks with the new secret only (a
// token per API, every probe; nothing recorded: the integration's state is
// the active credential's). Healthy or degraded: verified. Propagating (a
// new secret takes a while to be accepted everywhere): look again every
// VerifyEvery until the poll deadline; still propagating then, or broken:
// the operation fails and its end hook (rotateFinished) removes the new
// secret, the old one staying active. Idempotent: checks only read.
func (s *Service) rotateVerify(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p RotateParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	c, err := s.d.Rotation.GetCredentialForUpdate(ctx, s.d.Tx.Conn(), sc.Org, CredentialID(sc.Operation))
	if err != nil {
		return nil, err
	}
	chk, err := s.d.Tries.Try(ctx, sc.Org, p.Integration, c)
	if err != nil {
		return nil, err
	}
	out := verifyOut{Outcome: string(chk.Outcome), Summary: chk.Summary}
	switch chk.Outcome {
	case integration.StateHealthy, integration.StateDegraded:
		return outputs(out)
	case integration.StatePropagating, integration.StateUnverified, integration.StateProvisioning:
		if sc.PollExpired {
			return nil, operation.Fail(apperr.FailedPrecondition, "verification-failed",
				"The new credential was removed and the current one stays active; rotate again later.",
				"the new credential was still propagating when the verify window ended: %s", chk.Summary)
		}
		return nil, operation.Poll(s.verifyEvery(), time.Time{}, "%s: %s", chk.Outcome, chk.Summary)
	default:
		return nil, operation.Fail(apperr.FailedPrecondition, "verification-failed",
			"The new credential was removed and the current one stays active; see the findings, fix them, and rotate again.",
			"the new credential does not work (%s): %s", chk.Outcome, chk.Summary)
	}
}

// rotateActivate makes the new credential active and the one it replaces
// retiring until now + the organization's overlap, in one transaction
// under the integration's row lock, with the retirer's job for the old
// one (scheduled at the overlap's end) inserted in it: from its commit on,
// checks and tokens use the new secret; the old one keeps working for
// whoever still holds it. Idempotent: an already active new credential is
// success.
func (s *Service) rotateActivate(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p RotateParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	credID := CredentialID(sc.Operation)
	var out activateOut
	err := s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, sc.Org, p.Integration)
		if err != nil {
			return err
		}
		overlap, err := s.d.Rotation.CredentialOverlap(ctx, tx, sc.Org)
		if err != nil {
			return err
		}
		out = activateOut{Credential: credID.String(), OverlapSeconds: int64(overlap / time.Second)}
		if a, ok := in.Active(); ok {
			if a.ID == credID {
				return nil // done by an earlier attempt
			}
			end := time.Now().Add(overlap)
			if _, err := s.d.Rotation.RetireCredential(ctx, tx, sc.Org, a.ID, end); err != nil {
				return err
			}
			if err := s.queueRetire(ctx, tx, sc.Org, p.Integration, a.ID, "", end); err != nil {
				return err
			}
			out.Retiring, out.OverlapEnd = a.ID.String(), end
		}
		c, err := s.d.Rotation.GetCredentialForUpdate(ctx, tx, sc.Org, credID)
		if err != nil {
			return err
		}
		if _, err := s.d.Integrations.ActivateCredential(ctx, tx, sc.Org, credID, c.SecretVersion); err != nil {
			return err
		}
		_, err = s.d.Integrations.UpdateIntegration(ctx, tx, in) // a new etag: the credentials changed
		return err
	})
	if err != nil {
		return nil, err
	}
	return outputs(out)
}

type activateOut struct {
	Credential     string    `json:"credential"`
	Retiring       string    `json:"retiring,omitempty"`
	OverlapEnd     time.Time `json:"overlap_end,omitzero"`
	OverlapSeconds int64     `json:"overlap_seconds"`
}

// rotateFinished is the rotate kind's end hook, in the transaction that
// ends the operation. Success: nothing to do. Failure or cancel: the new
// credential must not outlive the operation, and the old one stays active
// (it was never touched before step d). A pending new credential turns
// retiring with its overlap ending now, and a retire job removes it from
// Entra and destroys its Vault value (the same path, and write order, as
// the end of an overlap); a new credential already active (step d
// committed, then a cancel before its record) stays: the rotation
// happened. A tagged password that never got its row (a crash between
// addPassword and the row, then a cancel) is removed by the same job, which
// removes every password tagged with the operation that no live row holds.
func (s *Service) rotateFinished(ctx context.Context, tx uow.Tx, op operation.Operation) error {
	if op.State == operation.StateSucceeded {
		return nil
	}
	var p RotateParams
	if err := decodeJSON(op.Params, &p); err != nil {
		return err
	}
	credID := CredentialID(op.ID)
	c, err := s.d.Rotation.GetCredentialForUpdate(ctx, tx, op.Org, credID)
	switch {
	case apperr.Is(err, apperr.NotFound):
		// No row: a value an attempt stored before it crashed (a
		// certificate's private key is stored before its upload) has no
		// owner; its destruction is queued here (a path never written is
		// success). Tagged keys or passwords are removed by the job below.
		if err := s.d.GC.QueueDestroy(ctx, tx, op.Org, integration.CredentialSecretPath(op.Org, p.Integration, credID)); err != nil {
			return err
		}
	case err != nil:
		return err
	case c.State == integration.CredentialPending:
		if _, err := s.d.Rotation.RetireCredential(ctx, tx, op.Org, credID, time.Now()); err != nil {
			return err
		}
	}
	if p.Trigger == TriggerRenewal && (c.State != integration.CredentialActive || err != nil) {
		if err := s.renewalFailed(ctx, tx, op, p); err != nil {
			return err
		}
	}
	return s.queueRetire(ctx, tx, op.Org, p.Integration, credID, PasswordTag(op.ID), time.Now())
}

// rotateResult is the operation's result.
func (s *Service) rotateResult(sc operation.StepContext) (any, error) {
	s.forget(sc.Operation)
	var p RotateParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	var a activateOut
	_, _ = sc.Output(RotateStepActivate, &a)
	var v verifyOut
	_, _ = sc.Output(RotateStepVerify, &v)
	return map[string]any{
		"integration": resource.Integration{Org: sc.Org, Tenant: p.Tenant, Integration: p.Integration}.String(),
		"credential":  a.Credential, "retiring": a.Retiring, "overlap_end": a.OverlapEnd, "verified": v.Outcome,
		"type": string(p.newType()),
	}, nil
}
