package postgres

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ event.Notifier = (*DB)(nil)

// Notify implements event.Notifier with the webhook_deliveries outbox.
func (db *DB) Notify(ctx context.Context, tx uow.Tx, org uuid.UUID, ev event.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return translate(queries.QueueWebhookDeliveries(ctx, q(tx), query.QueueWebhookDeliveriesParams{
		OrganizationID: org, Event: ev.Type, Resource: ev.Resource(), Payload: payload,
	}), "")
}
