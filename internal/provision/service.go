package provision

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// Tenants reads tenants.
type Tenants interface {
	GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error)
}

// Operations starts and reads operations (operation.Service).
type Operations interface {
	Start(ctx context.Context, tx uow.Tx, spec operation.Spec) (operation.Operation, error)
	Get(ctx context.Context, org, id uuid.UUID) (operation.Operation, error)
	Unfinished(ctx context.Context, tx uow.Tx, org uuid.UUID, target string) ([]operation.Operation, error)
}

// Consent gives the provisioner's credentials in a tenant and its
// admin-consent links (consent.Service).
type Consent interface {
	ForTenant(ctx context.Context, org uuid.UUID, t tenant.Tenant) (consent.Credentials, bool, error)
	AdminConsentLink(ctx context.Context, org, tenantID uuid.UUID, redirectURI string) (consent.Link, error)
	PlainLink(ctx context.Context, org, tenantID uuid.UUID) (string, error)
}

// Checker verifies an integration and records the check (verify.Service).
type Checker interface {
	// Prepare runs a check of the integration as it is now; Commit records
	// it in a transaction of its own, CommitIn in the caller's.
	Prepare(ctx context.Context, org, id uuid.UUID, trigger string) (verify.Pending, error)
	Commit(ctx context.Context, p verify.Pending) (verify.Result, error)
	CommitIn(ctx context.Context, tx uow.Tx, p verify.Pending) (verify.Result, error)
}

// Opener opens the tenant's directory with the provisioner's credentials:
// a new session (fresh tokens) every call.
type Opener func(c consent.Credentials) (Directory, error)

// Deps are what provisioning needs.
type Deps struct {
	Tx           uow.Runner
	Tenants      Tenants
	Integrations integration.Store
	Secrets      integration.SecretStore
	GC           secretgc.Queue // deprovision: secrets' destruction, queued with the row's deletion
	Generations  Generations    // uniqueName generations, bumped by deprovision
	Keys         idempotency.Store
	Audit        audit.Appender
	Operations   Operations
	Consent      Consent
	Open         Opener
	Checks       Checker
	// Rotation (rotate.go): the rotation's store, checks with a given
	// credential, and the retire job's inserter.
	Rotation RotationStore
	Tries    Trier
	Jobs     JobInserter
	// Automatic renewal (renew.go): its store, its settings, and the
	// notifier of what it reports (webhook events).
	Renewal  RenewalStore
	Renew    RenewConfig
	Notifier event.Notifier
	Log      *slog.Logger
	// VerifyEvery is how often the verify step looks again while the
	// checks say "propagating" (default 3s).
	VerifyEvery time.Duration
	// RBACWindow bounds the Sentinel step's looks after Azure refuses the
	// role assignment (a grant can take minutes to apply; default 5m;
	// negative: fail at the first refusal).
	RBACWindow time.Duration
	// Catalogs gives each organization's effective permission catalog
	// (catalog.go); nil: the embedded default.
	Catalogs Catalogs
	// VerifyDirectory adapts the operation's provisioner session to the
	// checks' port (verify.WithDirectory), so that the verify step's grant
	// read reuses it; nil (or a nil result): the checks open their own.
	VerifyDirectory func(Directory) verify.Directory
}

// Service runs ProvisionIntegration and the provision operation's steps.
type Service struct {
	d        Deps
	sessions sessions // the provisioner's session per running operation
	quota    *quota.Enforcer
}

// UseQuota holds creates to the organization's quota (internal/quota); nil
// (the default) admits everything.
func (s *Service) UseQuota(q *quota.Enforcer) { s.quota = q }

func (s *Service) verifyEvery() time.Duration {
	if s.d.VerifyEvery > 0 {
		return s.d.VerifyEvery
	}
	return 3 * time.Second
}

func (s *Service) rbacWindow() time.Duration {
	if s.d.RBACWindow == 0 {
		return 5 * time.Minute
	}
	return max(s.d.RBACWindow, 0)
}

// NewService returns a Service.
func NewService(d Deps) *Service { return &Service{d: d} }

// Start provisions an integration of spec's kind in a tenant: after the
// consent check, one transaction claims the request_id, inserts the
// integration (visible, management mode provisioned, state provisioning,
// client ID unknown until step b), starts the operation (its row, steps
// and River job) and appends the audit event. A replayed request_id
// returns the operation it started. A second provisioned integration of
// the kind in the tenant is refused by a unique index (AlreadyExists),
// whatever the timing of the two calls.
//
// The provisioner must be consented in the tenant: otherwise
// FailedPrecondition PROVISIONER_NOT_CONSENTED with the tenant's
// admin-consent link in the error's metadata (a single-use one when
// redirectURI is given, recorded like GetAdminConsentLink's; else a plain
// link, nothing written).
func (s *Service) Start(ctx context.Context, org, tenantID uuid.UUID, spec Spec, key idempotency.Key, redirectURI string) (operation.Operation, error) {
	t, err := s.d.Tenants.GetTenant(ctx, s.d.Tx.Conn(), org, tenantID)
	if err != nil {
		return operation.Operation{}, err
	}
	if err := integration.CheckCloud(spec.Kind, t.Cloud); err != nil {
		return operation.Operation{}, err
	}
	creds, ok, err := s.d.Consent.ForTenant(ctx, org, t)
	if err != nil {
		return operation.Operation{}, err
	} else if !ok {
		return operation.Operation{}, s.notConsented(ctx, org, t, redirectURI)
	}
	if spec.DisplayName == "" {
		spec.DisplayName = DefaultDisplayName
	}
	if spec.Kind == integration.KindSentinel && spec.Role == "" {
		spec.Role = RoleReader
	}
	in := integration.Integration{
		Org: org, Tenant: tenantID, ID: uuid.Must(uuid.NewV7()), DisplayName: spec.DisplayName, Kind: spec.Kind,
		Features: spec.Features, Mode: integration.ModeProvisioned, State: integration.StateProvisioning,
	}
	if spec.Workspace != nil {
		in.Sentinel = &integration.Sentinel{SubscriptionID: spec.Workspace.SubscriptionID, ResourceGroup: spec.Workspace.ResourceGroup,
			WorkspaceName: spec.Workspace.Name}
	}
	opID := operation.NewID()
	opName := operation.Name{Org: org, ID: opID}.String()
	params := Params{Integration: in.ID, Tenant: tenantID, Kind: spec.Kind, Features: spec.Features, DisplayName: spec.DisplayName,
		SecretLifetimeSeconds: int64(spec.SecretLifetime.Seconds()), CertificatePEM: spec.CertificatePEM, Workspace: spec.Workspace,
		Role: spec.Role}
	// The operation's provisioner session, and its Graph token requested
	// now, beside the transaction below and River's pick-up of the job
	// (prewarm); dropped again if no operation starts.
	s.prewarm(opID, creds)
	var (
		out   operation.Operation
		prior string
	)
	err = s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.d.Integrations.LockTenant(ctx, tx, org, tenantID); err != nil {
			return err
		}
		p, err := s.d.Keys.ClaimRequest(ctx, tx, org, "ProvisionIntegration", key, opName)
		if err != nil || p != "" {
			prior = p
			return err
		}
		// The uniqueName's generation: bumped by each deprovision, so a
		// new provision never reuses a name a deleted (or detached)
		// application may still hold.
		gen, err := s.d.Generations.ProvisionGeneration(ctx, tx, org, t.EntraTenantID, spec.Kind)
		if err != nil {
			return err
		}
		params.UniqueName = UniqueName(org, t.EntraTenantID, spec.Kind, gen)
		if err := s.quota.Admit(ctx, tx, org, quota.Integrations); err != nil {
			return err
		}
		if _, err := s.d.Integrations.InsertIntegration(ctx, tx, in); err != nil {
			if apperr.Is(err, apperr.AlreadyExists) {
				return apperr.Wrap(err, apperr.AlreadyExists,
					"a provisioned %s integration already exists in the tenant: follow its provisioning operation, or delete it before provisioning again", spec.Kind).
					WithReason("PROVISIONED_INTEGRATION_EXISTS")
			}
			return err
		}
		// Visible from the start: callers see what is being provisioned
		// (state provisioning; the sweep leaves it alone until step j).
		if _, err := s.d.Integrations.MakeIntegrationVisible(ctx, tx, org, in.ID); err != nil {
			return err
		}
		name := resource.Integration{Org: org, Tenant: tenantID, Integration: in.ID}.String()
		if out, err = s.d.Operations.Start(ctx, tx, operation.Spec{Org: org, ID: opID, Kind: KindName, Target: name,
			Params: params, RequestID: key.RequestID}); err != nil {
			return err
		}
		return s.d.Audit.AppendAudit(ctx, tx, org, name)
	})
	if err != nil {
		s.forget(opID)
		return operation.Operation{}, err
	}
	if prior != "" {
		s.forget(opID)
		n, err := operation.ParseName("request_id", prior)
		if err != nil {
			return operation.Operation{}, err
		}
		return s.d.Operations.Get(ctx, n.Org, n.ID)
	}
	return out, nil
}

// prewarm makes the provisioner session the consent check opened the new
// operation's (sessions.go: its first attempts use it), and requests its
// Graph token in the background, while ProvisionIntegration's transaction
// commits and the operation's job is being picked up: the first step then
// starts with its token instead of reading the provisioner's credentials
// (Postgres, Vault) and fetching one. The token request is the same one
// the first step would make, only earlier (a read: if the transaction
// fails, the session is dropped and nothing was changed anywhere); if
// another replica runs the operation, it opens its own session, as before.
func (s *Service) prewarm(op uuid.UUID, creds consent.Credentials) {
	dir, err := s.directory(operation.StepContext{Operation: op}, creds)
	if err != nil {
		return // the first step opens its own and reports why
	}
	p, ok := dir.(interface{ Prefetch(context.Context) })
	if !ok {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), prewarmTimeout)
		defer cancel()
		p.Prefetch(ctx)
	}()
}

// prewarmTimeout bounds prewarm's token request.
const prewarmTimeout = 30 * time.Second

// notConsented is the FailedPrecondition for a tenant whose administrator
// has not consented the provisioner, with the link that fixes it.
func (s *Service) notConsented(ctx context.Context, org uuid.UUID, t tenant.Tenant, redirectURI string) error {
	var link string
	if redirectURI != "" {
		l, err := s.d.Consent.AdminConsentLink(ctx, org, t.ID, redirectURI)
		if err != nil {
			return err
		}
		link = l.URL
	} else {
		l, err := s.d.Consent.PlainLink(ctx, org, t.ID)
		if err != nil {
			return apperr.Wrap(err, apperr.FailedPrecondition,
				"the organization's provisioner is not consented in tenant %s, and no admin-consent link can be made: register the provisioner (SetOrganizationProvisioner) first", t.EntraTenantID).
				WithReason("PROVISIONER_NOT_CONSENTED")
		}
		link = l
	}
	return apperr.New(apperr.FailedPrecondition,
		"the organization's provisioner is not consented in tenant %s: a Global Administrator (or Privileged Role Administrator) of that tenant opens the admin-consent link (error metadata admin_consent_link; GetAdminConsentLink issues one that dzconnect records), then retry: %s",
		t.EntraTenantID, link).WithReason("PROVISIONER_NOT_CONSENTED").WithMetadata("admin_consent_link", link)
}
