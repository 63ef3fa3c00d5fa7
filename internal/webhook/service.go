package webhook

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
)

// Service runs the webhook use cases that span Postgres and Vault.
type Service struct {
	store   Store
	secrets integration.SecretStore
	log     *slog.Logger
	now     func() time.Time
}

// NewService returns a Service. secrets is the Vault adapter that also
// holds client secrets.
func NewService(store Store, secrets integration.SecretStore, log *slog.Logger) *Service {
	return &Service{store: store, secrets: secrets, log: log, now: time.Now}
}

// Create creates a webhook and returns it with its signing secret, which
// is generated here, stored in Vault and never readable through the API
// again. A request_id replay of a finished create returns the webhook and
// an empty secret.
//
// Write order (the webhooks table has no pending column: a row whose
// secret_version is 0 is pending, and it is stored disabled so the
// delivery outbox never queues an event for it):
//  1. A pending row is committed with the request_id. It is invisible to
//     Get, List, Update, Delete and the delivery worker. A crash here
//     leaves nothing in Vault; the janitor deletes the stale row.
//  2. A fresh secret is written to Vault at the row's path (check-and-set).
//     A crash here leaves a secret nobody was shown and an invisible row:
//     a retry with the same request_id finds the row, writes a new secret
//     on top and finishes; without a retry the janitor deletes the row and
//     queues the secret's destruction in one transaction.
//  3. The row is made visible with the Vault version and the requested
//     disabled flag, and the audit event appended.
//
// The caller sees the secret only after step 3, so a secret it was shown
// is always the one the webhook signs with.
func (s *Service) Create(ctx context.Context, in Webhook, key idempotency.Key) (Webhook, string, error) {
	in.ID = uuid.Must(uuid.NewV7())
	in.SecretPath = SecretPath(in.Org, in.ID)
	in.SecretVersion = 0
	row, replay, err := s.store.BeginCreateWebhook(ctx, in, key)
	if err != nil {
		return Webhook{}, "", err
	}
	if replay && !row.Pending() {
		return row, "", nil
	}
	secret := NewSecret()
	version, err := integration.WriteSecret(ctx, s.secrets, row.SecretPath, secret, 0)
	if err != nil {
		return Webhook{}, "", apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable),
			"storing the signing secret in Vault failed; the webhook was not created (retry with the same request_id)")
	}
	out, err := s.store.FinishCreateWebhook(ctx, row.Org, row.ID, version, in.Disabled)
	if apperr.Is(err, apperr.NotFound) && replay {
		// A concurrent call with the same request_id finished first; its
		// caller holds the secret the row points at.
		w, gerr := s.store.GetWebhook(ctx, row.Org, row.ID)
		return w, "", gerr
	}
	if err != nil {
		return Webhook{}, "", err
	}
	return out, secret, nil
}

// Get returns a visible webhook.
func (s *Service) Get(ctx context.Context, org, id uuid.UUID) (Webhook, error) {
	return s.store.GetWebhook(ctx, org, id)
}

// List lists visible webhooks, oldest first.
func (s *Service) List(ctx context.Context, org uuid.UUID, p page.Request) ([]Webhook, error) {
	return s.store.ListWebhooks(ctx, org, p)
}

// Update applies mutate under the etag check.
func (s *Service) Update(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Webhook) error) (Webhook, error) {
	return s.store.UpdateWebhook(ctx, org, id, version, mutate)
}

// Delete deletes the webhook and its deliveries and destroys the signing
// secret. The destruction is queued in the deleting transaction, so if
// Vault is unreachable now the janitor finishes it later.
func (s *Service) Delete(ctx context.Context, org, id uuid.UUID, version int64) error {
	d, err := s.store.DeleteWebhook(ctx, org, id, version)
	if err != nil {
		return err
	}
	if err := s.secrets.Destroy(ctx, d.Path); err != nil {
		s.log.WarnContext(ctx, "destroying signing secret failed; the janitor will retry", "outbox_id", d.ID, "error", err)
		return nil
	}
	if err := s.store.DoneSecretDestruction(ctx, d.ID); err != nil {
		s.log.WarnContext(ctx, "clearing secret destruction failed; the janitor will retry", "outbox_id", d.ID, "error", err)
	}
	return nil
}

// ListDeliveries lists a visible webhook's deliveries, newest first.
func (s *Service) ListDeliveries(ctx context.Context, org, id uuid.UUID, p page.Request) ([]Delivery, error) {
	if _, err := s.store.GetWebhook(ctx, org, id); err != nil {
		return nil, err
	}
	return s.store.ListWebhookDeliveries(ctx, org, id, p)
}

// Reap removes webhook creates left unfinished for longer than pendingTTL
// and queues their secrets' destruction (the integration janitor drains
// that shared outbox).
func (s *Service) Reap(ctx context.Context, pendingTTL time.Duration) (int, error) {
	return s.store.ReapPendingWebhooks(ctx, s.now().Add(-pendingTTL))
}

// RunJanitor runs Reap every interval until ctx ends.
func (s *Service) RunJanitor(ctx context.Context, interval, pendingTTL time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Reap(ctx, pendingTTL)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "webhook janitor pass failed", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "webhook janitor pass", "reaped_pending", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
