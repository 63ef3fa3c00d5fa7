package consent

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// DefaultConfirmWait bounds how long CompleteAdminConsent waits for
// Microsoft to show the service principal a consent made.
const DefaultConfirmWait = 20 * time.Second

// Confirmer asks Microsoft whether c's application has a service principal
// in c's tenant: it gets an app-only token there, which Entra issues only
// then (AADSTS7000229 otherwise). Errors are *mserr.Error. Implemented by
// internal/microsoft (through internal/app).
type Confirmer interface {
	ConfirmServicePrincipal(ctx context.Context, c Credentials) error
}

// confirmFirst is step 1 and 2 of CompleteAdminConsent: when the callback
// would record a provisioner's consent, Microsoft must confirm it first.
// A request the transaction would refuse anyway (unknown or spent state,
// other redirect) is left to it, so the caller sees the same error.
func (s *Service) confirmFirst(ctx context.Context, org uuid.UUID, hash []byte, cb Callback) error {
	if s.confirm == nil {
		return nil
	}
	var (
		r Request
		t tenant.Tenant
	)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		var err error
		r, t, err = s.loadRequest(ctx, tx, org, hash, cb)
		return err
	})
	if err != nil {
		// The transaction that records the outcome reads the request
		// again and returns the same error to the caller.
		return nil //nolint:nilerr // left to step 3, which reports it
	}
	if decide(cb, t) != ResultConsented {
		return nil
	}
	var (
		creds Credentials
		ok    bool
	)
	if r.SharedKind != "" {
		creds, ok, err = s.sharedCredentials(ctx, org, r.SharedKind, t)
	} else {
		creds, ok, err = s.provisionerCredentials(ctx, org, t)
	}
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	return s.confirmWithin(ctx, creds, t, appLabel(r.SharedKind))
}

// appLabel names the application a consent is for, in errors.
func appLabel(sharedKind string) string {
	if sharedKind != "" {
		return "the shared " + sharedKind + " application"
	}
	return "the provisioner application"
}

// sharedCredentials reads the organization's shared application of kind
// with its secret, for confirming a consent of it. ok is false when the
// application is gone or its secret is not stored yet: the recording
// transaction then refuses or records as it would without confirmation
// (a shared application deleted meanwhile is NotFound there).
func (s *Service) sharedCredentials(ctx context.Context, org uuid.UUID, kind string, t tenant.Tenant) (Credentials, bool, error) {
	clientID, path, version, err := s.store.GetSharedAppSecretRef(ctx, s.tx.Conn(), org, kind)
	if apperr.Is(err, apperr.NotFound) {
		return Credentials{}, false, nil
	}
	if err != nil {
		return Credentials{}, false, err
	}
	if version == 0 {
		return Credentials{}, false, nil
	}
	secret, err := s.secrets.ReadClientSecret(ctx, path, version)
	if err != nil {
		return Credentials{}, false, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable), "reading the shared application's client secret from Vault failed")
	}
	return Credentials{Cloud: string(t.Cloud), Org: org.String(), TenantID: t.EntraTenantID.String(), ClientID: clientID.String(), Secret: secret}, true, nil
}

// confirmWithin asks Microsoft, waiting out replication lag with backoff
// for up to s.wait.
func (s *Service) confirmWithin(ctx context.Context, creds Credentials, t tenant.Tenant, app string) error {
	ctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	delay := 500 * time.Millisecond
	for {
		err := s.confirm.ConfirmServicePrincipal(ctx, creds)
		if err == nil {
			return nil
		}
		if !mserr.IsReplicationLag(err) {
			return unconfirmed(err, creds, t, app)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return unconfirmed(err, creds, t, app)
		case <-timer.C:
		}
		delay = min(2*delay, 4*time.Second)
	}
}

// unconfirmed is the caller's error when Microsoft did not confirm a
// consent. Nothing was written in any case.
func unconfirmed(err error, creds Credentials, t tenant.Tenant, app string) error {
	const after = " Nothing was recorded, and the link's state stays usable until it expires."
	var me *mserr.Error
	if !errors.As(err, &me) {
		return apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable),
			"Microsoft could not be asked to confirm the admin consent."+after+" Retry the completion")
	}
	switch me.Class {
	case mserr.ClassNoServicePrincipal, mserr.ClassAppNotFound:
		return apperr.New(apperr.FailedPrecondition,
			"Microsoft does not confirm the admin consent: %s %s has no service principal in Entra tenant %s (%s)."+after+
				" If an administrator of that tenant consented a moment ago, retry the completion in a minute; otherwise have one open the link",
			app, creds.ClientID, t.EntraTenantID, me.Code).WithReason("ADMIN_CONSENT_UNCONFIRMED")
	case mserr.ClassThrottled, mserr.ClassTransient, mserr.ClassNotReplicated:
		return apperr.New(apperr.Unavailable,
			"Microsoft did not confirm the admin consent in time (%s: %s)."+after+" Retry the completion", me.Code, me.Class)
	default:
		msg := "Microsoft refused the sign-in of %s in Entra tenant %s (%s), so the admin consent cannot be confirmed." + after
		if me.Remedy != "" {
			msg += " " + me.Remedy
		}
		return apperr.New(apperr.FailedPrecondition, msg, app, t.EntraTenantID, me.Code).WithReason("ADMIN_CONSENT_UNCONFIRMED")
	}
}
