package tenant

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Store persists tenants. Every method runs in the caller's unit of work
// and is scoped by organization; none opens a transaction.
type Store interface {
	// LockOrganization keeps org from being deleted until tx ends
	// (NotFound when it does not exist).
	LockOrganization(ctx context.Context, tx uow.Tx, org uuid.UUID) error
	InsertTenant(ctx context.Context, tx uow.Tx, t Tenant) (Tenant, error)
	GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Tenant, error)
	// GetTenantForUpdate reads and row-locks a tenant until tx ends.
	GetTenantForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Tenant, error)
	ListTenants(ctx context.Context, tx uow.Tx, org uuid.UUID, p page.Request) ([]Tenant, error)
	// UpdateTenant writes t's mutable fields and bumps its version.
	UpdateTenant(ctx context.Context, tx uow.Tx, t Tenant) (Tenant, error)
	DeleteTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error
}

// Service runs the tenant use cases.
type Service struct {
	tx    uow.Runner
	store Store
	keys  idempotency.Store
	audit audit.Appender
	quota *quota.Enforcer
}

// NewService returns a Service.
func NewService(tx uow.Runner, store Store, keys idempotency.Store, audit audit.Appender) *Service {
	return &Service{tx: tx, store: store, keys: keys, audit: audit}
}

// UseQuota holds creates to the organization's quota (internal/quota); nil
// (the default) admits everything.
func (s *Service) UseQuota(q *quota.Enforcer) { s.quota = q }

// CreateTenant creates t (ID chosen by the caller). With a request_id, a
// replay returns the tenant the first call created.
func (s *Service) CreateTenant(ctx context.Context, t Tenant, key idempotency.Key) (Tenant, error) {
	var out Tenant
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.LockOrganization(ctx, tx, t.Org); err != nil {
			return err
		}
		name := resource.Tenant{Org: t.Org, Tenant: t.ID}.String()
		prior, err := s.keys.ClaimRequest(ctx, tx, t.Org, "CreateTenant", key, name)
		if err != nil {
			return err
		}
		if prior != "" {
			n, err := resource.ParseTenant("request_id", prior)
			if err != nil {
				return err
			}
			out, err = s.store.GetTenant(ctx, tx, n.Org, n.Tenant)
			return err
		}
		if err := s.quota.Admit(ctx, tx, t.Org, quota.Tenants); err != nil {
			return err
		}
		if out, err = s.store.InsertTenant(ctx, tx, t); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, t.Org, name)
	})
	return out, err
}

// GetTenant returns one tenant.
func (s *Service) GetTenant(ctx context.Context, org, id uuid.UUID) (Tenant, error) {
	return s.store.GetTenant(ctx, s.tx.Conn(), org, id)
}

// ListTenants lists an organization's tenants in ID order.
func (s *Service) ListTenants(ctx context.Context, org uuid.UUID, p page.Request) ([]Tenant, error) {
	return s.store.ListTenants(ctx, s.tx.Conn(), org, p)
}

// UpdateTenant applies mutate to the tenant under a row lock, after
// checking the caller's etag (version; 0 skips the check).
func (s *Service) UpdateTenant(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Tenant) error) (Tenant, error) {
	var out Tenant
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetTenantForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		if out, err = s.store.UpdateTenant(ctx, tx, cur); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.Tenant{Org: org, Tenant: id}.String())
	})
	return out, err
}

// DeleteTenant deletes a tenant without integrations (FailedPrecondition
// otherwise), after checking the caller's etag.
func (s *Service) DeleteTenant(ctx context.Context, org, id uuid.UUID, version int64) error {
	return s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetTenantForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := s.store.DeleteTenant(ctx, tx, org, id); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.Tenant{Org: org, Tenant: id}.String())
	})
}
