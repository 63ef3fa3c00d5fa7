package integration

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
)

// Service runs the integration use cases that span Postgres and Vault.
type Service struct {
	store   Store
	secrets SecretStore
	log     *slog.Logger
	now     func() time.Time
}

// NewService returns a Service.
func NewService(store Store, secrets SecretStore, log *slog.Logger) *Service {
	return &Service{store: store, secrets: secrets, log: log, now: time.Now}
}

// SecretPath is where an integration's client secret lives in Vault,
// relative to the configured mount and prefix.
func SecretPath(org, id uuid.UUID) string {
	return fmt.Sprintf("organizations/%s/integrations/%s/client-secret", org, id)
}

// CreateCustomerManaged creates an integration from credentials a customer
// admin made by hand.
//
// Write order, so that a crash at any point leaves no visible
// half-integration and loses no secret:
//  1. A pending row is committed (invisible to Get and List) together with
//     the request_id. A crash here leaves no secret anywhere; the janitor
//     deletes the stale row.
//  2. The secret is written to Vault at the row's path (check-and-set).
//     A crash here leaves the secret in Vault and the row still invisible:
//     a retry with the same request_id finds the row and finishes it;
//     without a retry the janitor destroys the secret and the row together.
//  3. The row is made visible with the Vault version. From here on the
//     integration exists and its secret is in Vault.
//
// The caller learns of success only after step 3, so nothing it was told
// exists can be missing its secret.
func (s *Service) CreateCustomerManaged(ctx context.Context, in Integration, secret string, key idempotency.Key) (Integration, error) {
	in.ID = uuid.Must(uuid.NewV7())
	in.Mode = ModeCustomerManaged
	in.State = StateUnverified
	in.SecretPath = SecretPath(in.Org, in.ID)
	row, replay, err := s.store.BeginCreateIntegration(ctx, in, key)
	if err != nil {
		return Integration{}, err
	}
	if replay && !row.Pending {
		return row, nil
	}
	version, err := WriteSecret(ctx, s.secrets, row.SecretPath, secret, 0)
	if err != nil {
		return Integration{}, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable),
			"storing the client secret in Vault failed; the integration was not created (retry with the same request_id)")
	}
	out, err := s.store.FinishCreateIntegration(ctx, row.Org, row.ID, version)
	if apperr.Is(err, apperr.NotFound) {
		if got, gerr := s.store.GetIntegration(ctx, row.Org, row.ID); gerr == nil {
			return got, nil // a concurrent call with the same request_id finished it first
		}
		// The janitor rolled the create back while the secret was being
		// written: the secret just stored belongs to nothing.
		s.orphaned(ctx, row.Org, row.SecretPath)
		return Integration{}, apperr.New(apperr.Aborted, "the create took longer than the pending TTL and was rolled back; retry it")
	}
	return out, err
}

// orphaned queues the destruction of a secret written after its row went
// away, so nothing is left in Vault.
func (s *Service) orphaned(ctx context.Context, org uuid.UUID, path string) {
	if err := s.store.QueueSecretDestruction(context.WithoutCancel(ctx), org, path); err != nil {
		s.log.ErrorContext(ctx, "queueing an orphaned secret's destruction failed", "path", path, "error", err)
	}
}

// WriteSecret stores secret as a new version at path with check-and-set
// against expected (the version the caller's row points at; 0 for a new
// path). When Vault is ahead of the row — an earlier attempt stored a
// version and then failed before its row was written — the secret is
// written on top of the latest version instead: that orphan version was
// never referenced, and versions are kept, so nothing is lost.
func WriteSecret(ctx context.Context, secrets SecretStore, path, secret string, expected int64) (int64, error) {
	v, err := secrets.PutClientSecret(ctx, path, secret, expected)
	if !apperr.Is(err, apperr.Aborted) {
		return v, err
	}
	latest, err := secrets.CurrentVersion(ctx, path)
	if err != nil {
		return 0, err
	}
	return secrets.PutClientSecret(ctx, path, secret, latest)
}

// Get returns a visible integration.
func (s *Service) Get(ctx context.Context, org, id uuid.UUID) (Integration, error) {
	return s.store.GetIntegration(ctx, org, id)
}

// List lists visible integrations.
func (s *Service) List(ctx context.Context, org uuid.UUID, f Filter, p page.Request) ([]Integration, error) {
	return s.store.ListIntegrations(ctx, org, f, p)
}

// Update applies mutate; a non-empty secret is stored first as a new Vault
// version (check-and-set against the version the row points at). Should the
// row update then fail, the row still points at the previous version,
// which Vault keeps: nothing is lost, and a retry writes a newer version.
func (s *Service) Update(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Integration) error, secret string) (Integration, error) {
	if secret == "" {
		return s.store.UpdateIntegration(ctx, org, id, version, mutate)
	}
	cur, err := s.store.GetIntegration(ctx, org, id)
	if err != nil {
		return Integration{}, err
	}
	if version != 0 && version != cur.Version {
		return Integration{}, apperr.EtagMismatch()
	}
	newVersion, err := WriteSecret(ctx, s.secrets, cur.SecretPath, secret, cur.Credential.Version)
	if err != nil {
		return Integration{}, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable), "storing the new client secret in Vault failed; nothing was changed")
	}
	now := s.now().UTC()
	out, err := s.store.UpdateIntegration(ctx, org, id, version, func(i *Integration) error {
		if err := mutate(i); err != nil {
			return err
		}
		i.Credential.Version = newVersion
		i.Credential.CreateTime = &now
		i.ExpiryWarnTime = nil
		i.State = StateUnverified
		return nil
	})
	if apperr.Is(err, apperr.NotFound) {
		// Deleted while the new secret was being written: its destruction
		// may already have run, so queue the path again.
		s.orphaned(ctx, org, cur.SecretPath)
	}
	return out, err
}

// Delete deletes the row and destroys the secret. The destruction is
// queued in the deleting transaction, so if Vault is unreachable now the
// janitor finishes it later; the API answer does not wait for that.
func (s *Service) Delete(ctx context.Context, org, id uuid.UUID, version int64) error {
	d, err := s.store.DeleteIntegration(ctx, org, id, version)
	if err != nil {
		return err
	}
	if err := s.secrets.Destroy(ctx, d.Path); err != nil {
		s.log.WarnContext(ctx, "destroying secret failed; the janitor will retry", "outbox_id", d.ID, "error", err)
		return nil
	}
	if err := s.store.DoneSecretDestruction(ctx, d.ID); err != nil {
		s.log.WarnContext(ctx, "clearing secret destruction failed; the janitor will retry", "outbox_id", d.ID, "error", err)
	}
	return nil
}

// ReadSecret returns the current client secret, for verification.
func (s *Service) ReadSecret(ctx context.Context, in Integration) (string, error) {
	return s.secrets.ReadClientSecret(ctx, in.SecretPath, in.Credential.Version)
}
