package provision

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// RotateKindName is the operation kind that rotates a provisioned
// integration's client secret with an overlap (docs/credentials.md).
const RotateKindName = "rotate"

// DefaultOverlap is how long a replaced credential keeps working when the
// organization has not set its own (organizations.credential_overlap_seconds).
const DefaultOverlap = organization.DefaultCredentialOverlap

// MaxOverlap is the longest overlap an organization may set.
const MaxOverlap = organization.MaxCredentialOverlap

// RotationStore reads and writes what a rotation changes (postgres.DB).
type RotationStore interface {
	InsertStoredPendingCredential(ctx context.Context, tx uow.Tx, c integration.Credential) (integration.Credential, error)
	RetireCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID, overlapEnd time.Time) (integration.Credential, error)
	GetCredentialForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Credential, error)
	CredentialOverlap(ctx context.Context, tx uow.Tx, org uuid.UUID) (time.Duration, error)
}

// Trier runs an integration's checks with one given credential, without
// recording them (verify.Service.Try).
type Trier interface {
	Try(ctx context.Context, org, id uuid.UUID, cred integration.Credential) (verify.Check, error)
}

// JobInserter inserts River jobs in the caller's transaction (jobs.Inserter).
type JobInserter interface {
	Insert(ctx context.Context, tx uow.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// RotateParams are the rotate operation's parameters. The JSON names of
// integration, tenant and unique_name are Params's, so the provisioner
// session (open) serves both kinds.
type RotateParams struct {
	Integration uuid.UUID `json:"integration"`
	Tenant      uuid.UUID `json:"tenant"`
	UniqueName  string    `json:"unique_name"`
	AppObjectID string    `json:"application_object_id"`
	// Replaces is the credential active when the rotation started.
	Replaces uuid.UUID `json:"replaces"`
	// Type is the new credential's type: client_secret ("" in operations
	// started before certificates) or certificate (rotate_cert.go).
	Type integration.CredentialType `json:"type,omitempty"`
	// Trigger is TriggerRenewal when automatic renewal started the
	// rotation; empty when a caller asked (RotateCredential).
	Trigger string `json:"trigger,omitempty"`
}

// errRotating carries the rotation already running on the integration.
type errRotating struct{ op operation.Operation }

func (e *errRotating) Error() string { return "a rotation is already running: " + e.op.Name() }

// Rotate starts the rotation of a provisioned integration's client secret:
// one transaction claims the request_id, locks the integration, checks it
// can be rotated, starts the operation (row, steps, River job) and appends
// the audit event. Credential changes on one application are serialized:
// a rotation already running on the integration is returned as it is (so
// concurrent calls share one operation), any other unfinished provision or
// deprovision is FailedPrecondition OPERATION_RUNNING; the partial unique
// index operations_organization_id_target_credential_change_uq backs the
// rule when two callers race past the check.
func (s *Service) Rotate(ctx context.Context, target resource.Integration, key idempotency.Key) (operation.Operation, error) {
	return s.startRotate(ctx, target, key, "RotateCredential", "")
}

// GenerateCertificate starts a rotation whose new credential is a
// certificate dzconnect generates (GenerateCertificateCredential): a key
// pair whose private key is kept only in Vault, the public certificate
// uploaded to the application, verified with the certificate only, then
// made active; the previous credential (secret or certificate) retires
// after the overlap. This is how an integration switches from a secret to
// a certificate without downtime. Same rules as Rotate; a rotation
// already running is returned only when it makes a certificate too.
func (s *Service) GenerateCertificate(ctx context.Context, target resource.Integration, key idempotency.Key) (operation.Operation, error) {
	return s.startRotate(ctx, target, key, "GenerateCertificateCredential", integration.CredentialCertificate)
}

// startRotate starts a rotate operation; want is the new credential's
// type ("": the active credential's own type).
func (s *Service) startRotate(ctx context.Context, target resource.Integration, key idempotency.Key, method string,
	want integration.CredentialType) (operation.Operation, error) {
	op, err := s.rotate(ctx, target, key, method, want)
	if apperr.Is(err, apperr.AlreadyExists) {
		// Lost the race on the unique index: the winner's operation.
		running, uerr := s.d.Operations.Unfinished(ctx, s.d.Tx.Conn(), target.Org, target.String())
		if uerr != nil {
			return operation.Operation{}, uerr
		}
		if len(running) > 0 {
			return s.runningAnswer(running[0], target.String(), want)
		}
	}
	return op, err
}

func (s *Service) rotate(ctx context.Context, target resource.Integration, key idempotency.Key, method string,
	want integration.CredentialType) (operation.Operation, error) {
	org, id := target.Org, target.Integration
	name := target.String()
	opID := operation.NewID()
	opName := operation.Name{Org: org, ID: opID}.String()
	var (
		out   operation.Operation
		prior string
	)
	err := s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		p, err := s.d.Keys.ClaimRequest(ctx, tx, org, method, key, opName)
		if err != nil || p != "" {
			prior = p
			return err
		}
		in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if in.Tenant != target.Tenant {
			return apperr.NotFoundf(name)
		}
		typ, err := rotatable(name, in, want)
		if err != nil {
			return err
		}
		running, err := s.d.Operations.Unfinished(ctx, tx, org, name)
		if err != nil {
			return err
		}
		if len(running) > 0 {
			op, err := s.runningAnswer(running[0], name, typ)
			if err != nil {
				return err
			}
			return &errRotating{op: op}
		}
		out, err = s.startRotation(ctx, tx, target, in, opID, key.RequestID, typ, "")
		return err
	})
	var rotating *errRotating
	if errors.As(err, &rotating) {
		return rotating.op, nil
	}
	if err != nil {
		return operation.Operation{}, err
	}
	if prior != "" {
		n, err := operation.ParseName("request_id", prior)
		if err != nil {
			return operation.Operation{}, err
		}
		return s.d.Operations.Get(ctx, n.Org, n.ID)
	}
	return out, nil
}

// startRotation starts the rotate operation on in (locked by the caller's
// tx, rotatable, no unfinished credential-changing operation) and appends
// the audit event, in tx: the one way a rotation starts, on demand
// (Rotate, GenerateCertificateCredential) or by automatic renewal
// (renewOne, trigger TriggerRenewal); typ is the new credential's type
// (rotatable's answer).
func (s *Service) startRotation(ctx context.Context, tx uow.Tx, target resource.Integration, in integration.Integration,
	opID uuid.UUID, requestID uuid.UUID, typ integration.CredentialType, trigger string) (operation.Operation, error) {
	org, name := target.Org, target.String()
	active, _ := in.Active()
	t, err := s.d.Tenants.GetTenant(ctx, tx, org, in.Tenant)
	if err != nil {
		return operation.Operation{}, err
	}
	gen, err := s.d.Generations.ProvisionGeneration(ctx, tx, org, t.EntraTenantID, in.Kind)
	if err != nil {
		return operation.Operation{}, err
	}
	params := RotateParams{Integration: in.ID, Tenant: in.Tenant, UniqueName: UniqueName(org, t.EntraTenantID, in.Kind, gen),
		AppObjectID: in.AppObjectID.UUID.String(), Replaces: active.ID, Type: typ, Trigger: trigger}
	out, err := s.d.Operations.Start(ctx, tx, operation.Spec{Org: org, ID: opID, Kind: RotateKindName, Target: name,
		Params: params, RequestID: requestID})
	if err != nil {
		return operation.Operation{}, err
	}
	return out, s.d.Audit.AppendAudit(ctx, tx, org, name)
}

// runningAnswer is Rotate's answer when op has not finished on the
// integration: a rotation making the same type of credential (want; ""
// any) is returned, anything else refused.
func (s *Service) runningAnswer(op operation.Operation, name string, want integration.CredentialType) (operation.Operation, error) {
	if op.Kind == RotateKindName {
		var p RotateParams
		if err := decodeJSON(op.Params, &p); err != nil {
			return operation.Operation{}, err
		}
		if want == "" || p.newType() == want {
			return op, nil
		}
		return operation.Operation{}, apperr.New(apperr.FailedPrecondition,
			"rotation %s (new %s) is still running on %s: wait for it to end (WaitOperation), then try again", op.Name(), p.newType(), name).
			WithReason("OPERATION_RUNNING").WithMetadata("operation", op.Name())
	}
	return operation.Operation{}, apperr.New(apperr.FailedPrecondition,
		"operation %s (%s) is still running on %s: wait for it to end (WaitOperation), then rotate", op.Name(), op.Kind, name).
		WithReason("OPERATION_RUNNING").WithMetadata("operation", op.Name())
}

// rotatable says whether dzconnect can rotate in's credential: only a
// provisioned integration (dzconnect manages its application) whose
// provisioning finished. want "" (RotateCredential) needs an active client
// secret or a certificate dzconnect generated, and the new credential is
// of the same type; want certificate (GenerateCertificateCredential) needs
// nothing active (a certificate replaces whatever is). It returns the new
// credential's type.
func rotatable(name string, in integration.Integration, want integration.CredentialType) (integration.CredentialType, error) {
	switch in.Mode {
	case integration.ModeProvisioned:
	case integration.ModeShared:
		return "", apperr.New(apperr.FailedPrecondition,
			"%s uses the organization's shared application: rotate the shared application's secret instead (UpdateSharedApplication with the new secret)", name).
			WithReason("NOT_PROVISIONED")
	default:
		return "", apperr.New(apperr.FailedPrecondition,
			"%s is customer-managed: dzconnect cannot add credentials to an application it does not manage; create a new client secret in Entra and update the integration with it (UpdateIntegration, dzctl integration update --secret)", name).
			WithReason("NOT_PROVISIONED")
	}
	if in.State == integration.StateProvisioning || !in.AppObjectID.Valid {
		return "", apperr.New(apperr.FailedPrecondition, "%s is still being provisioned: wait for its provision operation to end, then rotate", name).
			WithReason("NOT_PROVISIONED")
	}
	if want == integration.CredentialCertificate {
		return want, nil
	}
	a, ok := in.Active()
	switch {
	case ok && a.Type == integration.CredentialClientSecret:
		return integration.CredentialClientSecret, nil
	case ok && a.Type == integration.CredentialCertificate && a.Source == integration.SourceProvisioned:
		return integration.CredentialCertificate, nil
	}
	return "", apperr.New(apperr.FailedPrecondition,
		"%s has no active client secret or dzconnect-generated certificate to rotate (its tenant's policy may allow only certificates: GenerateCertificateCredential makes one)", name).
		WithReason("NO_CLIENT_SECRET")
}

// newType is the type of credential the rotation makes.
func (p RotateParams) newType() integration.CredentialType {
	if p.Type == "" {
		return integration.CredentialClientSecret
	}
	return p.Type
}

// ValidateOverlap checks an organization's rotation overlap (the rule is
// the organization's: organization.ValidateCredentialOverlap).
func ValidateOverlap(d time.Duration) error {
	var v apperr.Violations
	organization.ValidateCredentialOverlap(&v, "credential_overlap", d)
	return v.Err()
}
