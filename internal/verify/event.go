package verify

import "time"

// Event types announced to webhooks.
const (
	EventStateChanged       = "integration.state_changed"
	EventCredentialExpiring = "integration.credential_expiring"
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
