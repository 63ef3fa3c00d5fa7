package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Service runs the webhook use cases that span Postgres and Vault; it owns
// their transactions, idempotency and audit.
type Service struct {
	tx      uow.Runner
	store   Store
	keys    idempotency.Store
	audit   audit.Appender
	gc      secretgc.Queue
	secrets integration.SecretStore
	log     *slog.Logger
	now     func() time.Time
	notify  *Notifier // queues redeliveries
}

// UseNotifier lets the service queue redeliveries (Redeliver) as the
// notifier queues deliveries.
func (s *Service) UseNotifier(n *Notifier) { s.notify = n }

// NewService returns a Service. secrets is the Vault adapter that also
// holds client secrets; gc queues the destruction of orphaned secrets.
func NewService(tx uow.Runner, store Store, keys idempotency.Store, audit audit.Appender, gc secretgc.Queue,
	secrets integration.SecretStore, log *slog.Logger) *Service {
	return &Service{tx: tx, store: store, keys: keys, audit: audit, gc: gc, secrets: secrets, log: log, now: time.Now}
}

// begin commits in as a pending row with the request_id, or, on a replay,
// returns the first call's row with replay=true.
func (s *Service) begin(ctx context.Context, in Webhook, key idempotency.Key) (Webhook, bool, error) {
	var (
		row    Webhook
		replay bool
	)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.LockOrganization(ctx, tx, in.Org); err != nil {
			return err
		}
		prior, err := s.keys.ClaimRequest(ctx, tx, in.Org, "CreateWebhook", key, Name(in.Org, in.ID))
		if err != nil {
			return err
		}
		if prior != "" {
			replay = true
			id, err := uuid.Parse(prior[strings.LastIndexByte(prior, '/')+1:])
			if err != nil {
				return fmt.Errorf("idempotency key names %q: %w", prior, err)
			}
			row, err = s.store.GetWebhookAny(ctx, tx, in.Org, id)
			return err
		}
		n, err := s.store.CountWebhooksLockingOrganization(ctx, tx, in.Org)
		if err != nil {
			return err
		}
		if n >= MaxPerOrganization {
			return apperr.New(apperr.FailedPrecondition, "an organization has at most %d webhooks; delete one first", MaxPerOrganization).
				WithReason("WEBHOOK_LIMIT")
		}
		row, err = s.store.InsertWebhook(ctx, tx, in)
		return err
	})
	return row, replay, err
}

// Create creates a webhook and returns it with its signing secret, which
// is generated here, stored in Vault and never readable through the API
// again. A request_id replay of a finished create returns the webhook and
// an empty secret.
//
// Write order (the webhooks table has no pending column: a row whose
// secret_version is 0 is pending, and it is stored disabled so the
// notifier never queues an event for it):
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
	row, replay, err := s.begin(ctx, in, key)
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
	var out Webhook
	err = s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		var err error
		if out, err = s.store.FinishCreateWebhook(ctx, tx, row.Org, row.ID, version, in.Disabled); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, row.Org, Name(row.Org, row.ID))
	})
	if apperr.Is(err, apperr.NotFound) && replay {
		// A concurrent call with the same request_id finished first; its
		// caller holds the secret the row points at.
		w, gerr := s.store.GetWebhook(ctx, s.tx.Conn(), row.Org, row.ID)
		return w, "", gerr
	}
	if err != nil {
		return Webhook{}, "", err
	}
	return out, secret, nil
}

// Get returns a visible webhook.
func (s *Service) Get(ctx context.Context, org, id uuid.UUID) (Webhook, error) {
	return s.store.GetWebhook(ctx, s.tx.Conn(), org, id)
}

// List lists visible webhooks, oldest first.
func (s *Service) List(ctx context.Context, org uuid.UUID, p page.Request) ([]Webhook, error) {
	return s.store.ListWebhooks(ctx, s.tx.Conn(), org, p)
}

// Update applies mutate under a row lock, after checking the caller's etag
// (version; 0 skips the check).
func (s *Service) Update(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Webhook) error) (Webhook, error) {
	var out Webhook
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetWebhookForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		if out, err = s.store.UpdateWebhook(ctx, tx, cur); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, Name(org, id))
	})
	return out, err
}

// Delete deletes the webhook and its deliveries. The signing secret's
// destruction is queued in the deleting transaction (a destroy_secret
// job), so an unreachable Vault delays it but never skips it.
func (s *Service) Delete(ctx context.Context, org, id uuid.UUID, version int64) error {
	return s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetWebhookForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := s.store.DeleteWebhook(ctx, tx, org, id); err != nil {
			return err
		}
		if err := s.gc.QueueDestroy(ctx, tx, org, cur.SecretPath); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, Name(org, id))
	})
}

// ListDeliveries lists a visible webhook's deliveries, newest first.
func (s *Service) ListDeliveries(ctx context.Context, org, id uuid.UUID, p page.Request) ([]Delivery, error) {
	if _, err := s.store.GetWebhook(ctx, s.tx.Conn(), org, id); err != nil {
		return nil, err
	}
	return s.store.ListWebhookDeliveries(ctx, s.tx.Conn(), org, id, p)
}

// errReplay ends a redelivery's transaction when its request_id was
// already used: prior names the delivery the first call made.
type errReplay struct{ prior string }

func (e errReplay) Error() string { return "request_id replay of " + e.prior }

// Redeliver sends delivery id of a visible webhook again: a new delivery
// of the same event and payload (its own attempt history, RedeliveryOf
// naming the original) and its deliver_webhook job, audited, in one
// transaction. A request_id replay returns the first call's delivery and
// writes nothing. A disabled webhook, or a delivery still pending (its
// next attempt is already scheduled), is refused with FailedPrecondition.
func (s *Service) Redeliver(ctx context.Context, org, webhookID uuid.UUID, id int64, key idempotency.Key) (Delivery, error) {
	if s.notify == nil {
		return Delivery{}, apperr.New(apperr.Internal, "redelivery is not configured")
	}
	var out Delivery
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		w, err := s.store.GetWebhookForUpdate(ctx, tx, org, webhookID)
		if err != nil {
			return err
		}
		orig, err := s.store.GetWebhookDelivery(ctx, tx, org, webhookID, id)
		if err != nil {
			return err
		}
		// The new row first: the request_id records its name. A replay
		// rolls it back (errReplay) and returns the first call's.
		if out, err = s.store.InsertRedelivery(ctx, tx, org, webhookID, id); err != nil {
			return err
		}
		name := DeliveryName(org, webhookID, out.ID)
		prior, err := s.keys.ClaimRequest(ctx, tx, org, "RedeliverWebhookDelivery", key, name)
		if err != nil {
			return err
		}
		if prior != "" {
			return errReplay{prior: prior}
		}
		switch {
		case w.Disabled:
			return apperr.New(apperr.FailedPrecondition, "the webhook is disabled: enable it first").WithReason("WEBHOOK_DISABLED")
		case orig.Status == StatusPending:
			return apperr.New(apperr.FailedPrecondition, "the delivery is still pending: its next attempt is due at %s",
				orig.NextAttemptTime.UTC().Format(time.RFC3339)).WithReason("DELIVERY_PENDING")
		}
		if err := s.notify.queue(ctx, tx, org, []int64{out.ID}); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, name)
	})
	var replay errReplay
	if errors.As(err, &replay) {
		priorID, perr := strconv.ParseInt(replay.prior[strings.LastIndexByte(replay.prior, '/')+1:], 10, 64)
		if perr != nil {
			return Delivery{}, fmt.Errorf("idempotency key names %q: %w", replay.prior, perr)
		}
		return s.store.GetWebhookDelivery(ctx, s.tx.Conn(), org, webhookID, priorID)
	}
	return out, err
}

// Reap removes webhook creates left unfinished for longer than pendingTTL
// and queues their secrets' destruction, in one transaction (the janitor
// job runs it).
func (s *Service) Reap(ctx context.Context, pendingTTL time.Duration) (int, error) {
	n := 0
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		reaped, err := s.store.ReapPendingWebhooks(ctx, tx, s.now().Add(-pendingTTL))
		if err != nil {
			return err
		}
		for _, r := range reaped {
			if err := s.gc.QueueDestroy(ctx, tx, r.Org, r.SecretPath); err != nil {
				return err
			}
		}
		n = len(reaped)
		return nil
	})
	return n, err
}
