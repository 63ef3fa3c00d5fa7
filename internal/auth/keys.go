package auth

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

// KeyService runs the API-key use cases; it owns their transactions,
// idempotency and audit.
type KeyService struct {
	tx    uow.Runner
	store Store
	keys  idempotency.Store
	audit audit.Appender
	quota *quota.Enforcer
	cache *KeyCache
}

// UseKeyCache makes updates and deletes evict the key from this replica's
// cache as soon as they commit (the other replicas learn it through the
// api_keys trigger's notification, as this one does too): a key deleted
// here is refused here by the next call.
func (s *KeyService) UseKeyCache(c *KeyCache) { s.cache = c }

func (s *KeyService) evict(org, id uuid.UUID) {
	if s.cache != nil {
		s.cache.Evict(org, id)
	}
}

// UseQuota holds creates to the organization's quota (internal/quota); nil
// (the default) admits everything.
func (s *KeyService) UseQuota(q *quota.Enforcer) { s.quota = q }

// NewKeyService returns a KeyService.
func NewKeyService(tx uow.Runner, store Store, keys idempotency.Store, audit audit.Appender) *KeyService {
	return &KeyService{tx: tx, store: store, keys: keys, audit: audit}
}

// CreateAPIKey stores k; on a request_id replay it returns the first key
// and created=false (its secret is not shown again).
func (s *KeyService) CreateAPIKey(ctx context.Context, k APIKey, key idempotency.Key) (APIKey, bool, error) {
	var (
		out     APIKey
		created bool
	)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.LockOrganization(ctx, tx, k.Org); err != nil {
			return err
		}
		name := resource.APIKey{Org: k.Org, Key: k.ID}.String()
		prior, err := s.keys.ClaimRequest(ctx, tx, k.Org, "CreateApiKey", key, name)
		if err != nil {
			return err
		}
		if prior != "" {
			n, err := resource.ParseAPIKey("request_id", prior)
			if err != nil {
				return err
			}
			out, err = s.store.GetAPIKey(ctx, tx, n.Org, n.Key)
			return err
		}
		if err := s.quota.Admit(ctx, tx, k.Org, quota.APIKeys); err != nil {
			return err
		}
		if out, err = s.store.InsertAPIKey(ctx, tx, k); err != nil {
			return err
		}
		created = true
		return s.audit.AppendAudit(ctx, tx, k.Org, name)
	})
	return out, created, err
}

// GetAPIKey returns one key.
func (s *KeyService) GetAPIKey(ctx context.Context, org, id uuid.UUID) (APIKey, error) {
	return s.store.GetAPIKey(ctx, s.tx.Conn(), org, id)
}

// ListAPIKeys lists an organization's keys in ID order.
func (s *KeyService) ListAPIKeys(ctx context.Context, org uuid.UUID, p page.Request) ([]APIKey, error) {
	return s.store.ListAPIKeys(ctx, s.tx.Conn(), org, p)
}

// UpdateAPIKey applies mutate under a row lock, after checking the
// caller's etag (version; 0 skips the check).
func (s *KeyService) UpdateAPIKey(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*APIKey) error) (APIKey, error) {
	var out APIKey
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetAPIKeyForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		if out, err = s.store.UpdateAPIKey(ctx, tx, cur); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.APIKey{Org: org, Key: id}.String())
	})
	if err == nil {
		s.evict(org, id)
	}
	return out, err
}

// DeleteAPIKey deletes a key after checking the caller's etag.
func (s *KeyService) DeleteAPIKey(ctx context.Context, org, id uuid.UUID, version int64) error {
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetAPIKeyForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := s.store.DeleteAPIKey(ctx, tx, org, id); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.APIKey{Org: org, Key: id}.String())
	})
	if err == nil {
		s.evict(org, id)
	}
	return err
}
