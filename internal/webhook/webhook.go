// Package webhook holds an organization's webhooks (HTTPS endpoints told
// when an integration's outcome changes or its credential nears expiry),
// their use cases, the signing of deliveries and the delivery worker.
//
// The signing secret lives only in Vault (integration.SecretStore, the same
// adapter as client secrets); Postgres (Store) keeps the path and version.
// Deliveries are River jobs (kind deliver_webhook): Notifier writes the
// delivery rows (the log the API lists) and one job per delivery in the
// transaction that records the change; Deliverer is the job's worker, and
// River retries it on the published schedule, several replicas sharing the
// work.
package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Event is a kind of event a webhook receives, stored by its type string
// (the "type" of the JSON payload).
type Event string

// The events.
const (
	EventStateChanged       Event = event.StateChanged
	EventCredentialExpiring Event = event.CredentialExpiring
	EventOperationFinished  Event = event.OperationFinished
	EventConsumerStale      Event = event.CredentialConsumerStale

	EventCredentialRenewalFailed  Event = event.CredentialRenewalFailed
	EventCredentialExpiryMismatch Event = event.CredentialExpiryMismatch
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
	NextAttemptTime time.Time // while pending: when the next attempt is due
	DeliverTime     *time.Time
	// LastAttemptTime is when the last attempt started (the River job's
	// attempted_at); nil before the first.
	LastAttemptTime *time.Time
	// RedeliveryOf is the ID of the delivery this one repeats
	// (Service.Redeliver); 0 for an event's first delivery.
	RedeliveryOf int64
}

// Claim is a delivery with what it takes to send it.
type Claim struct {
	Delivery
	URL           string
	SecretPath    string
	SecretVersion int64
	Disabled      bool // the webhook was disabled after the event
}

// Attempt is the outcome of one delivery attempt, as recorded.
type Attempt struct {
	Status          Status
	Attempts        int
	LastStatusCode  int
	LastError       string
	NextAttemptTime time.Time
	DeliverTime     *time.Time
	LastAttemptTime *time.Time
}

// Reaped is a pending webhook the janitor removed.
type Reaped struct {
	Org, ID    uuid.UUID
	SecretPath string
}

// Store persists webhooks and deliveries. Every method runs in the
// caller's unit of work and never opens a transaction; every API method is
// scoped by organization (ReapPendingWebhooks spans them: background work).
type Store interface {
	// LockOrganization keeps org from being deleted until tx ends
	// (NotFound when it does not exist).
	LockOrganization(ctx context.Context, tx uow.Tx, org uuid.UUID) error
	// CountWebhooksLockingOrganization counts org's webhooks (pending ones
	// too) with the organization's row locked for update until tx ends.
	CountWebhooksLockingOrganization(ctx context.Context, tx uow.Tx, org uuid.UUID) (int, error)
	// InsertWebhook inserts in as pending: secret_version 0 and disabled.
	InsertWebhook(ctx context.Context, tx uow.Tx, in Webhook) (Webhook, error)
	// GetWebhookAny reads a webhook, pending or not.
	GetWebhookAny(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Webhook, error)
	// FinishCreateWebhook makes a pending row visible with the stored
	// secret version and the requested disabled flag; NotFound when the
	// row is not pending (any more).
	FinishCreateWebhook(ctx context.Context, tx uow.Tx, org, id uuid.UUID, secretVersion int64, disabled bool) (Webhook, error)
	GetWebhook(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Webhook, error)
	// GetWebhookForUpdate reads and row-locks a visible webhook.
	GetWebhookForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Webhook, error)
	// ListWebhooks lists visible webhooks, oldest first.
	ListWebhooks(ctx context.Context, tx uow.Tx, org uuid.UUID, p page.Request) ([]Webhook, error)
	// UpdateWebhook writes w's URL, events and disabled flag and bumps its
	// version.
	UpdateWebhook(ctx context.Context, tx uow.Tx, w Webhook) (Webhook, error)
	// DeleteWebhook deletes the row and its deliveries.
	DeleteWebhook(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error
	// ReapPendingWebhooks deletes pending webhooks created before cutoff
	// (and their request IDs) and returns them.
	ReapPendingWebhooks(ctx context.Context, tx uow.Tx, cutoff time.Time) ([]Reaped, error)
	// ListWebhookDeliveries lists a webhook's deliveries, newest first
	// (page.Request.AfterSeq is the last ID seen).
	ListWebhookDeliveries(ctx context.Context, tx uow.Tx, org, webhookID uuid.UUID, p page.Request) ([]Delivery, error)
	// InsertDeliveries writes one pending delivery of the event per
	// enabled, visible webhook of org subscribed to it, and returns their
	// IDs.
	InsertDeliveries(ctx context.Context, tx uow.Tx, org uuid.UUID, ev Event, resource string, payload []byte) ([]int64, error)
	// InsertDeliveriesMany is InsertDeliveries for several events (of any
	// organizations) in one statement; it returns the deliveries written.
	InsertDeliveriesMany(ctx context.Context, tx uow.Tx, evs []NewDeliveries) ([]DeliveryRef, error)
	// GetDeliveryForSend reads a delivery and its webhook's URL and secret.
	GetDeliveryForSend(ctx context.Context, tx uow.Tx, org uuid.UUID, id int64) (Claim, error)
	// GetWebhookDelivery reads a delivery of a visible webhook.
	GetWebhookDelivery(ctx context.Context, tx uow.Tx, org, webhookID uuid.UUID, id int64) (Delivery, error)
	// InsertRedelivery writes a new pending delivery of delivery id's
	// event and payload to its webhook, naming id as the one it repeats.
	InsertRedelivery(ctx context.Context, tx uow.Tx, org, webhookID uuid.UUID, id int64) (Delivery, error)
	// RecordWebhookAttempt stores an attempt's outcome of a pending
	// delivery.
	RecordWebhookAttempt(ctx context.Context, tx uow.Tx, org uuid.UUID, id int64, a Attempt) error
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

// NewDeliveries is one event to deliver to every enabled webhook of Org
// subscribed to it (InsertDeliveriesMany).
type NewDeliveries struct {
	Org      uuid.UUID
	Event    Event
	Resource string
	Payload  []byte // the event's JSON
}

// DeliveryRef names a delivery written by InsertDeliveriesMany.
type DeliveryRef struct {
	Org uuid.UUID
	ID  int64
}
