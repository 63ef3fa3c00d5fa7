package sharedapp

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Integrations is the part of integration.Store a shared integration's
// creation writes.
type Integrations interface {
	LockTenant(ctx context.Context, tx uow.Tx, org, tenant uuid.UUID) error
	InsertIntegration(ctx context.Context, tx uow.Tx, in integration.Integration) (integration.Integration, error)
	MakeIntegrationVisible(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error)
	GetIntegration(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error)
}

// Tenants reads tenants.
type Tenants interface {
	GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error)
}

// Consents issues admin-consent links for a shared application (the
// consent package's machinery; the callback is CompleteAdminConsent).
type Consents interface {
	SharedAdminConsentLink(ctx context.Context, org, tenantID uuid.UUID, kind string, clientID uuid.UUID, redirectURI string) (consent.Link, error)
	SharedPlainLink(ctx context.Context, org, tenantID, clientID uuid.UUID) (string, error)
}

// Deps are what the use cases need.
type Deps struct {
	Tx           uow.Runner
	Store        Store
	Tenants      Tenants
	Integrations Integrations
	Secrets      integration.SecretStore
	Keys         idempotency.Store
	Audit        audit.Appender
	GC           secretgc.Queue
	Consents     Consents
	Log          *slog.Logger
}

// Service runs the shared-mode use cases; it owns their transactions.
type Service struct {
	d     Deps
	quota *quota.Enforcer
}

// UseQuota holds creates to the organization's quota (internal/quota); nil
// (the default) admits everything.
func (s *Service) UseQuota(q *quota.Enforcer) { s.quota = q }

// NewService returns a Service.
func NewService(d Deps) *Service { return &Service{d: d} }

// Name is a shared application's resource name.
func Name(org uuid.UUID, kind integration.Kind) string {
	return resource.Org{Org: org}.String() + "/sharedApplications/" + string(kind)
}

// Create registers the organization's shared application of a.Kind with
// its client secret.
//
// Write order, so that a crash at any point loses nothing and never pairs a
// client ID with another application's secret:
//  1. One transaction claims the request_id and inserts the row with the
//     secret's Vault path and version 0 (invisible through the API), so
//     deleting the organization destroys whatever is written next. A row
//     left invisible by an earlier attempt that crashed is replaced.
//  2. The secret is written to Vault with check-and-set (0, or on top of
//     what an earlier attempt stored).
//  3. One transaction records the version (the row becomes visible) and
//     appends the audit event.
//
// A retry with the same request_id after a crash resumes at 2; once the
// row is visible it returns it. AlreadyExists when the kind has a visible
// shared application.
func (s *Service) Create(ctx context.Context, a App, secret string, key idempotency.Key) (App, error) {
	a.SecretPath = SecretPath(a.Org, a.Kind)
	name := Name(a.Org, a.Kind)
	var replay bool
	err := s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		prior, err := s.d.Keys.ClaimRequest(ctx, tx, a.Org, "CreateSharedApplication", key, name)
		if err != nil {
			return err
		}
		cur, err := s.d.Store.GetSharedAppForUpdate(ctx, tx, a.Org, a.Kind)
		switch {
		case err == nil && cur.Visible():
			if prior != "" {
				replay = true
				return nil
			}
			return apperr.New(apperr.AlreadyExists, "the organization already has a shared %s application (%s): update its secret, or delete it first",
				a.Kind, name).WithReason("SHARED_APPLICATION_EXISTS")
		case err == nil:
			// An earlier attempt stopped before its secret was stored.
			if err := s.d.Store.DeleteSharedApp(ctx, tx, a.Org, a.Kind); err != nil {
				return err
			}
		case !apperr.Is(err, apperr.NotFound):
			return err
		}
		_, err = s.d.Store.InsertSharedApp(ctx, tx, a)
		return err
	})
	if err != nil {
		return App{}, err
	}
	if replay {
		return s.Get(ctx, a.Org, a.Kind)
	}
	version, err := s.put(ctx, a.SecretPath, secret, 0)
	if err != nil {
		return App{}, err
	}
	var out App
	err = s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.d.Store.GetSharedAppForUpdate(ctx, tx, a.Org, a.Kind)
		if err != nil {
			return err
		}
		if cur.ClientID != a.ClientID || cur.SecretVersion >= version {
			return apperr.New(apperr.Aborted, "a concurrent CreateSharedApplication for %s won; read it and retry if this one should win", a.Kind).
				WithReason("CONCURRENT_UPDATE")
		}
		if out, err = s.d.Store.SetSharedAppSecret(ctx, tx, a.Org, a.Kind, version, a.SecretEndTime); err != nil {
			return err
		}
		return s.d.Audit.AppendAudit(ctx, tx, a.Org, name)
	})
	return out, err
}

// put writes secret at path with check-and-set against cas; when Vault is
// ahead (an earlier attempt stored a version and then failed, or a
// concurrent call is storing one) it writes on top of the latest.
func (s *Service) put(ctx context.Context, path, secret string, cas int64) (int64, error) {
	version, err := s.d.Secrets.PutClientSecret(ctx, path, secret, cas)
	if apperr.Is(err, apperr.Aborted) {
		var latest int64
		if latest, err = s.d.Secrets.CurrentVersion(ctx, path); err == nil {
			version, err = s.d.Secrets.PutClientSecret(ctx, path, secret, latest)
		}
	}
	if err != nil {
		return 0, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable),
			"storing the shared application's client secret in Vault failed; nothing was changed (retry)")
	}
	return version, nil
}

// Get returns a visible shared application.
func (s *Service) Get(ctx context.Context, org uuid.UUID, kind integration.Kind) (App, error) {
	a, err := s.d.Store.GetSharedApp(ctx, s.d.Tx.Conn(), org, kind)
	if err != nil {
		return App{}, err
	}
	if !a.Visible() {
		return App{}, apperr.NotFoundf(Name(org, kind))
	}
	return a, nil
}

// List lists the organization's shared applications.
func (s *Service) List(ctx context.Context, org uuid.UUID) ([]App, error) {
	return s.d.Store.ListSharedApps(ctx, s.d.Tx.Conn(), org)
}

// UpdateSecret replaces the shared application's client secret (a new
// client secret the organization made on the same application in its home
// tenant). Every integration that uses the application uses the new secret
// from its next token on: checks read the version the row points at.
//
// Write order: the new version is written to Vault first (the row still
// points at the previous version, which Vault keeps); then one transaction
// checks the etag, points the row at the new version and appends the audit
// event. A crash in between leaves the previous secret in use and an
// unreferenced newer Vault version that the next update writes over.
func (s *Service) UpdateSecret(ctx context.Context, org uuid.UUID, kind integration.Kind, version int64, secret string, end *time.Time) (App, error) {
	cur, err := s.Get(ctx, org, kind)
	if err != nil {
		return App{}, err
	}
	if version != 0 && version != cur.Version {
		return App{}, apperr.EtagMismatch()
	}
	stored, err := s.put(ctx, cur.SecretPath, secret, cur.SecretVersion)
	if err != nil {
		return App{}, err
	}
	var out App
	err = s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		now, err := s.d.Store.GetSharedAppForUpdate(ctx, tx, org, kind)
		if err != nil {
			return err
		}
		if now.Version != cur.Version || now.SecretVersion >= stored {
			return apperr.EtagMismatch()
		}
		if out, err = s.d.Store.SetSharedAppSecret(ctx, tx, org, kind, stored, end); err != nil {
			return err
		}
		return s.d.Audit.AppendAudit(ctx, tx, org, Name(org, kind))
	})
	return out, err
}

// Delete deletes a shared application that no integration uses
// (FailedPrecondition otherwise); its tenants' consents go with it and its
// secret's destruction is queued in the same transaction.
func (s *Service) Delete(ctx context.Context, org uuid.UUID, kind integration.Kind, version int64) error {
	return s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.d.Store.GetSharedAppForUpdate(ctx, tx, org, kind)
		if err != nil {
			return err
		}
		if !cur.Visible() {
			return apperr.NotFoundf(Name(org, kind))
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		n, err := s.d.Store.CountSharedIntegrations(ctx, tx, org, kind)
		if err != nil {
			return err
		}
		if n > 0 {
			return apperr.New(apperr.FailedPrecondition,
				"%d integration(s) use the shared %s application: delete them first", n, kind).WithReason("SHARED_APPLICATION_IN_USE")
		}
		if err := s.d.Store.DeleteSharedApp(ctx, tx, org, kind); err != nil {
			return err
		}
		if err := s.d.GC.QueueDestroy(ctx, tx, org, cur.SecretPath); err != nil {
			return err
		}
		return s.d.Audit.AppendAudit(ctx, tx, org, Name(org, kind))
	})
}

// ConsentLink issues a single-use admin-consent link for the shared
// application of kind in a tenant (recorded like GetAdminConsentLink's; the
// callback is CompleteAdminConsent).
func (s *Service) ConsentLink(ctx context.Context, org, tenantID uuid.UUID, kind integration.Kind, redirectURI string) (consent.Link, error) {
	a, err := s.Get(ctx, org, kind)
	if err != nil {
		return consent.Link{}, err
	}
	return s.d.Consents.SharedAdminConsentLink(ctx, org, tenantID, string(kind), a.ClientID, redirectURI)
}

// IntegrationSpec is what a shared-mode integration is made of.
type IntegrationSpec struct {
	Kind        integration.Kind
	DisplayName string
	Sentinel    *integration.Sentinel
}

// DefaultDisplayName names a shared integration when the caller does not.
const DefaultDisplayName = "Dropzone AI"

// CreateIntegration creates an integration in management mode shared: it
// uses the shared application of spec.Kind in the tenant, whose
// administrator must have consented it (FailedPrecondition
// SHARED_APPLICATION_NOT_CONSENTED with the admin-consent link in the
// error's metadata otherwise: a single-use one when redirectURI is given,
// else a plain one and nothing written). Nothing is created in the tenant:
// no application, no secret. One transaction claims the request_id,
// inserts the integration (visible at once: it has no secret of its own),
// records which shared application it uses and appends the audit event.
func (s *Service) CreateIntegration(ctx context.Context, org, tenantID uuid.UUID, spec IntegrationSpec, key idempotency.Key, redirectURI string) (integration.Integration, error) {
	t, err := s.d.Tenants.GetTenant(ctx, s.d.Tx.Conn(), org, tenantID)
	if err != nil {
		return integration.Integration{}, err
	}
	if err := integration.CheckCloud(spec.Kind, t.Cloud); err != nil {
		return integration.Integration{}, err
	}
	a, err := s.Get(ctx, org, spec.Kind)
	if apperr.Is(err, apperr.NotFound) {
		return integration.Integration{}, apperr.New(apperr.FailedPrecondition,
			"the organization has no shared %s application: register it first (CreateSharedApplication)", spec.Kind).
			WithReason("SHARED_APPLICATION_NOT_SET")
	}
	if err != nil {
		return integration.Integration{}, err
	}
	c, err := s.d.Store.GetSharedConsent(ctx, s.d.Tx.Conn(), org, tenantID, spec.Kind)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return integration.Integration{}, err
	}
	if err != nil || c.ClientID != a.ClientID {
		return integration.Integration{}, s.notConsented(ctx, t, a, redirectURI)
	}
	if spec.DisplayName == "" {
		spec.DisplayName = DefaultDisplayName
	}
	in := integration.Integration{Org: org, Tenant: tenantID, ID: uuid.Must(uuid.NewV7()), DisplayName: spec.DisplayName,
		Kind: spec.Kind, Features: a.Features, Mode: ModeShared, ClientID: a.ClientID, Sentinel: spec.Sentinel,
		State: integration.StateUnverified}
	name := resource.Integration{Org: org, Tenant: tenantID, Integration: in.ID}.String()
	var (
		out   integration.Integration
		prior string
	)
	err = s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.d.Integrations.LockTenant(ctx, tx, org, tenantID); err != nil {
			return err
		}
		if prior, err = s.d.Keys.ClaimRequest(ctx, tx, org, "CreateSharedIntegration", key, name); err != nil || prior != "" {
			return err
		}
		if err := s.quota.Admit(ctx, tx, org, quota.Integrations); err != nil {
			return err
		}
		if _, err := s.d.Integrations.InsertIntegration(ctx, tx, in); err != nil {
			if apperr.Is(err, apperr.AlreadyExists) {
				return apperr.Wrap(err, apperr.AlreadyExists, "the tenant already has a %s integration with the shared application", spec.Kind).
					WithReason("SHARED_INTEGRATION_EXISTS")
			}
			return err
		}
		if out, err = s.d.Integrations.MakeIntegrationVisible(ctx, tx, org, in.ID); err != nil {
			return err
		}
		if err := s.d.Store.InsertSharedIntegration(ctx, tx, org, in.ID, spec.Kind); err != nil {
			return err
		}
		return s.d.Audit.AppendAudit(ctx, tx, org, name)
	})
	if err != nil {
		return integration.Integration{}, err
	}
	if prior != "" {
		n, err := resource.ParseIntegration("request_id", prior)
		if err != nil {
			return integration.Integration{}, err
		}
		return s.d.Integrations.GetIntegration(ctx, s.d.Tx.Conn(), n.Org, n.Integration)
	}
	return out, nil
}

// notConsented is the FailedPrecondition for a tenant whose administrator
// has not consented the shared application, with the link that fixes it.
func (s *Service) notConsented(ctx context.Context, t tenant.Tenant, a App, redirectURI string) error {
	var link string
	if redirectURI != "" {
		l, err := s.d.Consents.SharedAdminConsentLink(ctx, t.Org, t.ID, string(a.Kind), a.ClientID, redirectURI)
		if err != nil {
			return err
		}
		link = l.URL
	} else {
		l, err := s.d.Consents.SharedPlainLink(ctx, t.Org, t.ID, a.ClientID)
		if err != nil {
			return err
		}
		link = l
	}
	return apperr.New(apperr.FailedPrecondition,
		"the organization's shared %s application is not consented in tenant %s: an administrator of that tenant opens the admin-consent link (error metadata admin_consent_link; GetSharedApplicationConsentLink issues one that dzconnect records), then retry: %s",
		a.Kind, t.EntraTenantID, link).WithReason("SHARED_APPLICATION_NOT_CONSENTED").WithMetadata("admin_consent_link", link)
}

// ReadSecret returns the client secret an integration in management mode
// shared uses: its shared application's, at the version the application
// row points at (so an updated secret takes effect for every integration
// at once). NotFound when the integration uses no shared application.
func (s *Service) ReadSecret(ctx context.Context, in integration.Integration) (string, error) {
	a, err := s.d.Store.GetSharedIntegrationApp(ctx, s.d.Tx.Conn(), in.Org, in.ID)
	if err != nil {
		return "", err
	}
	if !a.Visible() {
		return "", apperr.New(apperr.NotFound, "the shared application's secret is not stored")
	}
	return s.d.Secrets.ReadClientSecret(ctx, a.SecretPath, a.SecretVersion)
}

// SecretChangeTime is when the secret a shared integration uses last
// changed (its shared application's last update); false when unknown.
// SecretEndTime is when the secret of the shared application in use by a
// shared integration expires (nil when not known); ok is false when in is
// not a shared integration.
func (s *Service) SecretEndTime(ctx context.Context, in integration.Integration) (*time.Time, bool) {
	a, err := s.d.Store.GetSharedIntegrationApp(ctx, s.d.Tx.Conn(), in.Org, in.ID)
	if err != nil {
		return nil, false
	}
	return a.SecretEndTime, true
}

func (s *Service) SecretChangeTime(ctx context.Context, in integration.Integration) (time.Time, bool) {
	a, err := s.d.Store.GetSharedIntegrationApp(ctx, s.d.Tx.Conn(), in.Org, in.ID)
	if err != nil {
		return time.Time{}, false
	}
	return a.UpdateTime, true
}
