package organization

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// serviceScope is the organization_id of service-level request IDs (an
// organization's create is not inside an organization).
var serviceScope = uuid.Nil

// Service runs the organization use cases; it owns their transactions,
// idempotency and audit.
type Service struct {
	tx    uow.Runner
	store Store
	keys  idempotency.Store
	audit audit.Appender
	gc    secretgc.Queue
}

// NewService returns a Service; gc queues the destruction of the secrets a
// deleted organization leaves.
func NewService(tx uow.Runner, store Store, keys idempotency.Store, audit audit.Appender, gc secretgc.Queue) *Service {
	return &Service{tx: tx, store: store, keys: keys, audit: audit, gc: gc}
}

// CreateOrganization creates o (ID chosen by the caller). With a
// request_id, a replay returns the organization the first call created.
func (s *Service) CreateOrganization(ctx context.Context, o Organization, key idempotency.Key) (Organization, error) {
	var out Organization
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		name := resource.Org{Org: o.ID}.String()
		prior, err := s.keys.ClaimRequest(ctx, tx, serviceScope, "CreateOrganization", key, name)
		if err != nil {
			return err
		}
		if prior != "" {
			n, err := resource.ParseOrg("request_id", prior)
			if err != nil {
				return err
			}
			out, err = s.store.GetOrganization(ctx, tx, n.Org)
			return err
		}
		if out, err = s.store.InsertOrganization(ctx, tx, o); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, o.ID, name)
	})
	return out, err
}

// GetOrganization returns one organization.
func (s *Service) GetOrganization(ctx context.Context, id uuid.UUID) (Organization, error) {
	return s.store.GetOrganization(ctx, s.tx.Conn(), id)
}

// ListOrganizations lists organizations in ID order.
func (s *Service) ListOrganizations(ctx context.Context, p page.Request) ([]Organization, error) {
	return s.store.ListOrganizations(ctx, s.tx.Conn(), p)
}

// UpdateOrganization applies mutate under a row lock, after checking the
// caller's etag (version; 0 skips the check), then validates the result
// (the credential settings are checked together: InvalidArgument naming
// the field, nothing written).
func (s *Service) UpdateOrganization(ctx context.Context, id uuid.UUID, version int64, mutate func(*Organization) error) (Organization, error) {
	var out Organization
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetOrganizationForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		if err := validateCredentialSettings(cur); err != nil {
			return err
		}
		if out, err = s.store.UpdateOrganization(ctx, tx, cur); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, id, resource.Org{Org: id}.String())
	})
	return out, err
}

// DeleteOrganization deletes an organization without tenants
// (FailedPrecondition otherwise), after checking the caller's etag. Its API
// keys, request IDs and webhooks go with it; its provisioner secret, its
// shared applications' secrets and webhook signing secrets are queued for destruction in the same
// transaction (destroy_secret jobs), so none is left behind in Vault.
func (s *Service) DeleteOrganization(ctx context.Context, id uuid.UUID, version int64) error {
	return s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetOrganizationForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		paths, err := s.store.ListWebhookSecretPaths(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.ProvisionerSecretPath != "" {
			paths = append(paths, cur.ProvisionerSecretPath)
		}
		shared, err := s.store.ListSharedSecretPaths(ctx, tx, id)
		if err != nil {
			return err
		}
		paths = append(paths, shared...)
		if err := s.store.DeleteOrganization(ctx, tx, id); err != nil {
			return err
		}
		for _, p := range paths {
			if err := s.gc.QueueDestroy(ctx, tx, id, p); err != nil {
				return err
			}
		}
		return s.audit.AppendAudit(ctx, tx, id, resource.Org{Org: id}.String())
	})
}
