// Package event is what dzconnect announces (webhooks today): the event
// types, their JSON body, and the Notifier that queues them in the unit of
// work of the change they report, so an event is sent if and only if its
// change committed.
package event

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Event types announced to webhooks.
const (
	StateChanged       = "integration.state_changed"
	CredentialExpiring = "integration.credential_expiring"
)

// Event is the JSON body of a webhook delivery.
type Event struct {
	Type                 string     `json:"type"`
	Time                 time.Time  `json:"time"`
	Organization         string     `json:"organization"`
	Integration          string     `json:"integration"`
	Kind                 string     `json:"kind"`
	PreviousState        string     `json:"previous_state,omitempty"`
	State                string     `json:"state"`
	Check                string     `json:"check"`
	Summary              string     `json:"summary"`
	CredentialExpireTime *time.Time `json:"credential_expire_time,omitempty"`
}

// Notifier queues the deliveries of ev (one per subscribed webhook of org)
// in tx.
type Notifier interface {
	Notify(ctx context.Context, tx uow.Tx, org uuid.UUID, ev Event) error
}
