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
	// OperationFinished: an operation reached a final state (succeeded,
	// failed, canceled); queued in the transaction that records it.
	OperationFinished = "operation.finished"
	// CredentialConsumerStale: a consumer registered by
	// AcknowledgeCredential still uses another credential than the active
	// one shortly before a rotated-out credential is removed
	// (internal/token).
	CredentialConsumerStale = "credential.consumer_stale"
	// CredentialRenewalFailed: automatic renewal could not renew a
	// credential (its rotation failed, or none could start); it tries
	// again at NextAttemptTime.
	CredentialRenewalFailed = "integration.credential_renewal_failed"
	// CredentialExpiryMismatch: the expiry date read from Entra differs
	// from the recorded one (RecordedExpireTime); the record now holds
	// Entra's (CredentialExpireTime).
	CredentialExpiryMismatch = "integration.credential_expiry_mismatch"
)

// Event is the JSON body of a webhook delivery.
type Event struct {
	Type                 string     `json:"type"`
	Time                 time.Time  `json:"time"`
	Organization         string     `json:"organization"`
	Integration          string     `json:"integration,omitempty"` // integration events
	Kind                 string     `json:"kind,omitempty"`        // the integration's kind (integration events)
	PreviousState        string     `json:"previous_state,omitempty"`
	State                string     `json:"state"`
	Check                string     `json:"check,omitempty"`
	Summary              string     `json:"summary"`
	CredentialExpireTime *time.Time `json:"credential_expire_time,omitempty"`

	// integration.credential_expiring: the credential (resource name), the
	// whole days left before it expires, and what to do (for a
	// customer-managed integration: the exact steps to replace the secret).
	Credential         string `json:"credential,omitempty"`
	CredentialDaysLeft *int   `json:"credential_days_left,omitempty"`
	Remedy             string `json:"remedy,omitempty"`

	// operation.finished: the operation's name and kind, the resource it
	// worked on, and, when it failed, why (State is its final state).
	Operation     string          `json:"operation,omitempty"`
	OperationKind string          `json:"operation_kind,omitempty"`
	Target        string          `json:"target,omitempty"`
	Error         *OperationError `json:"error,omitempty"`

	// credential.consumer_stale: the consumer, the credential it last
	// acknowledged (Credential, above), the retiring credential and when
	// that is removed.
	Consumer           string     `json:"consumer,omitempty"`
	RetiringCredential string     `json:"retiring_credential,omitempty"`
	RemoveTime         *time.Time `json:"remove_time,omitempty"`
	// Credential events (renewal): the credential's resource name, the
	// expiry date recorded before Entra's was read, and when automatic
	// renewal tries again.
	RecordedExpireTime *time.Time `json:"recorded_expire_time,omitempty"`
	NextAttemptTime    *time.Time `json:"next_attempt_time,omitempty"`
}

// OperationError is why an operation failed (as GetOperation shows it:
// never secrets).
type OperationError struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
	Remedy  string `json:"remedy,omitempty"`
	Step    string `json:"step,omitempty"`
}

// Resource is the resource the event is about: the integration, or the
// operation.
func (e Event) Resource() string {
	if e.Integration != "" {
		return e.Integration
	}
	return e.Operation
}

// Notifier queues the deliveries of ev (one per subscribed webhook of org)
// in tx.
type Notifier interface {
	Notify(ctx context.Context, tx uow.Tx, org uuid.UUID, ev Event) error
}
