package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

var _ webhook.Store = (*DB)(nil)

func webhookFrom(r query.Webhook) webhook.Webhook {
	w := webhook.Webhook{Org: r.OrganizationID, ID: r.ID, URL: r.Url, Disabled: r.Disabled, SecretPath: r.SecretPath,
		SecretVersion: r.SecretVersion, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime, Version: r.Version}
	for _, e := range r.Events {
		w.Events = append(w.Events, webhook.Event(e))
	}
	return w
}

func eventStrings(es []webhook.Event) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, string(e))
	}
	return out
}

func deliveryFrom(r query.WebhookDelivery) webhook.Delivery {
	return webhook.Delivery{Org: r.OrganizationID, ID: r.ID, Webhook: r.WebhookID, Event: webhook.Event(r.Event),
		Resource: r.Resource, Payload: r.Payload, Status: webhook.Status(r.Status), Attempts: int(r.Attempts),
		LastStatusCode: int(r.LastStatusCode), LastError: r.LastError, CreateTime: r.CreateTime,
		NextAttemptTime: r.NextAttemptTime, DeliverTime: r.DeliverTime, LastAttemptTime: r.LastAttemptTime,
		RedeliveryOf: derefInt(r.RedeliveryOf)}
}

// GetWebhookDelivery implements webhook.Store.
func (db *DB) GetWebhookDelivery(ctx context.Context, tx uow.Tx, org, webhookID uuid.UUID, id int64) (webhook.Delivery, error) {
	r, err := queries.GetWebhookDelivery(ctx, q(tx), query.GetWebhookDeliveryParams{OrganizationID: org, WebhookID: webhookID, ID: id})
	if err != nil {
		return webhook.Delivery{}, translate(err, webhook.DeliveryName(org, webhookID, id))
	}
	return deliveryFrom(r), nil
}

// InsertRedelivery implements webhook.Store.
func (db *DB) InsertRedelivery(ctx context.Context, tx uow.Tx, org, webhookID uuid.UUID, id int64) (webhook.Delivery, error) {
	r, err := queries.InsertWebhookRedelivery(ctx, q(tx), query.InsertWebhookRedeliveryParams{OrganizationID: org, WebhookID: webhookID, ID: id})
	if err != nil {
		return webhook.Delivery{}, translate(err, webhook.DeliveryName(org, webhookID, id))
	}
	return deliveryFrom(r), nil
}

// CountWebhooksLockingOrganization implements webhook.Store.
func (db *DB) CountWebhooksLockingOrganization(ctx context.Context, tx uow.Tx, org uuid.UUID) (int, error) {
	n, err := queries.CountWebhooksLockingOrganization(ctx, q(tx), org)
	return int(n), translate(err, "")
}

// InsertWebhook implements webhook.Store.
func (db *DB) InsertWebhook(ctx context.Context, tx uow.Tx, in webhook.Webhook) (webhook.Webhook, error) {
	r, err := queries.InsertWebhook(ctx, q(tx), query.InsertWebhookParams{
		OrganizationID: in.Org, ID: in.ID, Url: in.URL, Events: eventStrings(in.Events), SecretPath: in.SecretPath,
	})
	return webhookFrom(r), translate(err, "")
}

// GetWebhookAny implements webhook.Store.
func (db *DB) GetWebhookAny(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (webhook.Webhook, error) {
	r, err := queries.GetWebhookAny(ctx, q(tx), query.GetWebhookAnyParams{OrganizationID: org, ID: id})
	return webhookFrom(r), translate(err, webhook.Name(org, id))
}

// FinishCreateWebhook implements webhook.Store.
func (db *DB) FinishCreateWebhook(ctx context.Context, tx uow.Tx, org, id uuid.UUID, secretVersion int64, disabled bool) (webhook.Webhook, error) {
	r, err := queries.FinishCreateWebhook(ctx, q(tx), query.FinishCreateWebhookParams{
		OrganizationID: org, ID: id, SecretVersion: secretVersion, Disabled: disabled,
	})
	return webhookFrom(r), translate(err, webhook.Name(org, id))
}

// GetWebhook implements webhook.Store.
func (db *DB) GetWebhook(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (webhook.Webhook, error) {
	r, err := queries.GetWebhook(ctx, q(tx), query.GetWebhookParams{OrganizationID: org, ID: id})
	return webhookFrom(r), translate(err, webhook.Name(org, id))
}

// GetWebhookForUpdate implements webhook.Store.
func (db *DB) GetWebhookForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (webhook.Webhook, error) {
	r, err := queries.GetWebhookForUpdate(ctx, q(tx), query.GetWebhookForUpdateParams{OrganizationID: org, ID: id})
	return webhookFrom(r), translate(err, webhook.Name(org, id))
}

// ListWebhooks implements webhook.Store.
func (db *DB) ListWebhooks(ctx context.Context, tx uow.Tx, org uuid.UUID, p page.Request) ([]webhook.Webhook, error) {
	rows, err := queries.ListWebhooks(ctx, q(tx), query.ListWebhooksParams{OrganizationID: org, After: p.After, Lim: int32(p.Size + 1)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]webhook.Webhook, 0, len(rows))
	for _, r := range rows {
		out = append(out, webhookFrom(r))
	}
	return out, nil
}

// UpdateWebhook implements webhook.Store.
func (db *DB) UpdateWebhook(ctx context.Context, tx uow.Tx, w webhook.Webhook) (webhook.Webhook, error) {
	r, err := queries.UpdateWebhook(ctx, q(tx), query.UpdateWebhookParams{
		OrganizationID: w.Org, ID: w.ID, Url: w.URL, Events: eventStrings(w.Events), Disabled: w.Disabled,
	})
	return webhookFrom(r), translate(err, webhook.Name(w.Org, w.ID))
}

// DeleteWebhook implements webhook.Store.
func (db *DB) DeleteWebhook(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	n, err := queries.DeleteWebhook(ctx, q(tx), query.DeleteWebhookParams{OrganizationID: org, ID: id})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, webhook.Name(org, id))
}

// ReapPendingWebhooks implements webhook.Store. It runs for every
// organization: it is background work, not an API query.
func (db *DB) ReapPendingWebhooks(ctx context.Context, tx uow.Tx, cutoff time.Time) ([]webhook.Reaped, error) {
	rows, err := queries.ReapPendingWebhooks(ctx, q(tx), cutoff)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]webhook.Reaped, 0, len(rows))
	for _, r := range rows {
		if err := queries.DeleteRequestKeysOfResource(ctx, q(tx), query.DeleteRequestKeysOfResourceParams{
			OrganizationID: r.OrganizationID, ResourceName: webhook.Name(r.OrganizationID, r.ID),
		}); err != nil {
			return nil, translate(err, "")
		}
		out = append(out, webhook.Reaped{Org: r.OrganizationID, ID: r.ID, SecretPath: r.SecretPath})
	}
	return out, nil
}

// ListWebhookDeliveries implements webhook.Store, newest first.
func (db *DB) ListWebhookDeliveries(ctx context.Context, tx uow.Tx, org, webhookID uuid.UUID, p page.Request) ([]webhook.Delivery, error) {
	before := p.AfterSeq
	if before == 0 {
		before = math.MaxInt64
	}
	rows, err := queries.ListWebhookDeliveries(ctx, q(tx), query.ListWebhookDeliveriesParams{
		OrganizationID: org, WebhookID: webhookID, Before: before, Lim: int32(p.Size + 1),
	})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]webhook.Delivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, deliveryFrom(r))
	}
	return out, nil
}

// InsertDeliveries implements webhook.Store.
func (db *DB) InsertDeliveries(ctx context.Context, tx uow.Tx, org uuid.UUID, ev webhook.Event, resource string, payload []byte) ([]int64, error) {
	ids, err := queries.InsertWebhookDeliveries(ctx, q(tx), query.InsertWebhookDeliveriesParams{
		OrganizationID: org, Event: string(ev), Resource: resource, Payload: payload,
	})
	return ids, translate(err, "")
}

// InsertDeliveriesMany implements webhook.Store.
func (db *DB) InsertDeliveriesMany(ctx context.Context, tx uow.Tx, evs []webhook.NewDeliveries) ([]webhook.DeliveryRef, error) {
	type row struct {
		Org      uuid.UUID       `json:"organization_id"`
		Event    string          `json:"event"`
		Resource string          `json:"resource"`
		Payload  json.RawMessage `json:"payload"`
	}
	rows := make([]row, len(evs))
	for i, e := range evs {
		rows[i] = row{Org: e.Org, Event: string(e.Event), Resource: e.Resource, Payload: e.Payload}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("encoding webhook events: %w", err)
	}
	written, err := queries.InsertWebhookDeliveriesMany(ctx, q(tx), b)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]webhook.DeliveryRef, len(written))
	for i, w := range written {
		out[i] = webhook.DeliveryRef{Org: w.OrganizationID, ID: w.ID}
	}
	return out, nil
}

// GetDeliveryForSend implements webhook.Store.
func (db *DB) GetDeliveryForSend(ctx context.Context, tx uow.Tx, org uuid.UUID, id int64) (webhook.Claim, error) {
	r, err := queries.GetDeliveryForSend(ctx, q(tx), query.GetDeliveryForSendParams{OrganizationID: org, ID: id})
	if err != nil {
		return webhook.Claim{}, translate(err, "webhook delivery")
	}
	return webhook.Claim{Delivery: deliveryFrom(r.WebhookDelivery), URL: r.Url, SecretPath: r.SecretPath,
		SecretVersion: r.SecretVersion, Disabled: r.Disabled}, nil
}

// RecordWebhookAttempt implements webhook.Store.
func (db *DB) RecordWebhookAttempt(ctx context.Context, tx uow.Tx, org uuid.UUID, id int64, a webhook.Attempt) error {
	return translate(queries.RecordWebhookAttempt(ctx, q(tx), query.RecordWebhookAttemptParams{
		OrganizationID: org, ID: id, Status: string(a.Status), Attempts: int32(a.Attempts), LastStatusCode: int32(a.LastStatusCode),
		LastError: truncate(a.LastError, 500), NextAttemptTime: a.NextAttemptTime, DeliverTime: a.DeliverTime,
		LastAttemptTime: a.LastAttemptTime,
	}), "")
}
