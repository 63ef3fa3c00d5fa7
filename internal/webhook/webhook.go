// Package webhook holds an organization's webhooks (HTTPS endpoints told
// when an integration's outcome changes or its credential nears expiry),
// their use cases, the signing of deliveries and the delivery worker.
//
// The signing secret lives only in Vault (integration.SecretStore, the same
// adapter as client secrets); Postgres (Store) keeps the path and version.
// Deliveries are an outbox: internal/postgres writes them in the
// transaction that records the change, and Deliverer sends them with
// retries, several replicas sharing the work.
package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
)

// Event is a kind of event a webhook receives, stored by its type string
// (the "type" of the JSON payload).
type Event string

// The events.
const (
	EventStateChanged       Event = event.StateChanged
	EventCredentialExpiring Event = event.CredentialExpiring
	EventOperationFinished  Event = event.OperationFinished
)

// Webhook is one endpoint of an organization.
type Webhook struct {
	Org, ID    uuid.UUID
	URL        string
	Events     []Event
	Disabled   bool
	SecretPath string
	// SecretVersion is the Vault version of the signing secret; 0 while the
	// webhook is pending (being created, invisible to the API).
	SecretVersion int64
	CreateTime    time.Time
	UpdateTime    time.Time
	Version       int64
}

// Pending reports whether the create has not finished.
func (w Webhook) Pending() bool { return w.SecretVersion == 0 }

// Status is a delivery's state.
type Status string

// The delivery states.
const (
	StatusPending   Status = "pending"
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
)

// Delivery is one event for one webhook and its attempt history.
type Delivery struct {
	Org             uuid.UUID
	ID              int64
	Webhook         uuid.UUID
	Event           Event
	Resource        string // the integration the event is about
	Payload         []byte // event.Event JSON
	Status          Status
	Attempts        int
	LastStatusCode  int
	LastError       string
	CreateTime      time.Time
	NextAttemptTime time.Time
	DeliverTime     *time.Time
}

// Claim is a due delivery leased to one worker, with what it needs to send
// it. Lease is the delivery's next_attempt_time while claimed: the outcome
// is recorded only if it still holds, so a worker whose lease ran out (and
// whose delivery another worker took over) cannot overwrite that worker's
// result.
type Claim struct {
	Delivery
	URL           string
	SecretPath    string
	SecretVersion int64
	Lease         time.Time
}

// Attempt is the outcome of one delivery attempt, as recorded.
type Attempt struct {
	Status          Status
	Attempts        int
	LastStatusCode  int
	LastError       string
	NextAttemptTime time.Time
	DeliverTime     *time.Time
}

// Store persists webhooks and deliveries; every API method is scoped by
// organization. The worker's methods span organizations (background work).
type Store interface {
	// BeginCreateWebhook commits in as a pending row (secret_version 0,
	// disabled so no event is queued for it, invisible to the API), or, on
	// a request_id replay, returns the first call's row with replay=true.
	// The organization must exist (NotFound).
	BeginCreateWebhook(ctx context.Context, in Webhook, key idempotency.Key) (row Webhook, replay bool, err error)
	// FinishCreateWebhook makes a pending row visible with the stored secret
	// version and the requested disabled flag, and appends the audit event.
	// It returns NotFound when the row is not pending (any more).
	FinishCreateWebhook(ctx context.Context, org, id uuid.UUID, secretVersion int64, disabled bool) (Webhook, error)
	GetWebhook(ctx context.Context, org, id uuid.UUID) (Webhook, error)
	// ListWebhooks lists visible webhooks, oldest first.
	ListWebhooks(ctx context.Context, org uuid.UUID, p page.Request) ([]Webhook, error)
	UpdateWebhook(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Webhook) error) (Webhook, error)
	// DeleteWebhook deletes the row (and its deliveries) and enqueues its
	// secret's destruction in the same transaction.
	DeleteWebhook(ctx context.Context, org, id uuid.UUID, version int64) (integration.SecretDestruction, error)
	// DoneSecretDestruction removes one destruction outbox entry.
	DoneSecretDestruction(ctx context.Context, id int64) error
	// ListWebhookDeliveries lists a webhook's deliveries, newest first
	// (page.Request.AfterSeq is the last ID seen).
	ListWebhookDeliveries(ctx context.Context, org, webhookID uuid.UUID, p page.Request) ([]Delivery, error)

	// ReapPendingWebhooks deletes pending webhooks created before cutoff
	// (and their request IDs) and enqueues their secrets' destruction.
	ReapPendingWebhooks(ctx context.Context, cutoff time.Time) (int, error)
	// ClaimWebhookDeliveries leases up to limit pending deliveries due at
	// now (next_attempt_time <= now) by setting their next_attempt_time to
	// lease; rows another worker holds are skipped (FOR UPDATE SKIP
	// LOCKED). Deliveries of disabled webhooks are marked failed instead.
	ClaimWebhookDeliveries(ctx context.Context, now, lease time.Time, limit int) ([]Claim, error)
	// RecordWebhookAttempt stores an attempt's outcome if c's lease still
	// holds; it reports whether it did.
	RecordWebhookAttempt(ctx context.Context, c Claim, a Attempt) (bool, error)
}

// SecretPath is where a webhook's signing secret lives in Vault, relative
// to the configured mount and prefix.
func SecretPath(org, id uuid.UUID) string {
	return fmt.Sprintf("organizations/%s/webhooks/%s/signing-secret", org, id)
}

// Name formats a webhook's resource name.
func Name(org, id uuid.UUID) string {
	return fmt.Sprintf("organizations/%s/webhooks/%s", org, id)
}

// DeliveryName formats a delivery's resource name.
func DeliveryName(org, webhookID uuid.UUID, id int64) string {
	return fmt.Sprintf("%s/deliveries/%d", Name(org, webhookID), id)
}

// MaxPerOrganization bounds an organization's webhooks, so that one
// organization cannot flood the delivery workers every replica shares.
const MaxPerOrganization = 25
