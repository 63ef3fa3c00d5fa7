// Package integration holds the integration resource (one Dropzone
// integration in a customer tenant) and its use cases. Its client secret
// lives only in Vault (SecretStore); Postgres (Store) holds everything else,
// including the Vault path and version.
package integration

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
)

// Kind is the integration kind, stored by slug.
type Kind string

// The kinds.
const (
	KindDefender Kind = "microsoft-365-defender"
	KindSentinel Kind = "microsoft-sentinel"
)

// Feature is an optional Microsoft 365 / Defender capability.
type Feature string

// The features.
const (
	FeatureCloudApps    Feature = "cloud_apps"
	FeatureLiveResponse Feature = "live_response"
	FeatureExchange     Feature = "exchange"
)

// Mode says who made the Entra application.
type Mode string

// The management modes.
const (
	ModeCustomerManaged Mode = "customer-managed"
	ModeProvisioned     Mode = "provisioned"
)

// State is the outcome of the latest verification.
type State string

// The states.
const (
	StateUnverified      State = "unverified"
	StateHealthy         State = "healthy"
	StatePropagating     State = "propagating"
	StateDegraded        State = "degraded"
	StateBroken          State = "broken"
	StateBlockedByPolicy State = "blocked-by-policy"
)

// Sentinel locates a Sentinel integration's Log Analytics workspace.
type Sentinel struct {
	SubscriptionID uuid.UUID
	ResourceGroup  string
	WorkspaceName  string
	WorkspaceID    uuid.UUID
}

// Credential is the client secret's metadata; never its value.
type Credential struct {
	KeyID      uuid.NullUUID
	Hint       string
	CreateTime *time.Time
	ExpireTime *time.Time
	Version    int64 // Vault version; 0 while pending
}

// Integration is one Dropzone integration in a tenant.
type Integration struct {
	Org, Tenant, ID  uuid.UUID
	DisplayName      string
	Kind             Kind
	Features         []Feature
	Mode             Mode
	ClientID         uuid.UUID
	AppObjectID      uuid.NullUUID
	ServicePrincipal uuid.NullUUID
	Sentinel         *Sentinel
	SecretPath       string
	Credential       Credential
	State            State
	LastCheckTime    *time.Time
	StateChangeTime  *time.Time // when State last changed
	ExpiryWarnTime   *time.Time // when the credential-expiring event went out; nil after a credential change
	Pending          bool
	CreateTime       time.Time
	UpdateTime       time.Time
	Version          int64
}

// Filter narrows a listing.
type Filter struct {
	Tenant uuid.UUID // uuid.Nil: every tenant
	Kind   Kind      // "": any
	State  State     // "": any
	// ExpireBefore keeps integrations whose credential expires before it
	// (zero: any).
	ExpireBefore time.Time
}

// SecretDestruction is an outbox entry: a Vault path to destroy.
type SecretDestruction struct {
	ID   int64
	Org  uuid.UUID
	Path string
}

// Store persists integrations; every method is scoped by organization
// except the janitor's.
type Store interface {
	// BeginCreateIntegration commits in as a pending (invisible) row, or,
	// on a request_id replay, returns the row of the first call with
	// replay=true (pending or not).
	BeginCreateIntegration(ctx context.Context, in Integration, key idempotency.Key) (row Integration, replay bool, err error)
	// FinishCreateIntegration makes a pending row visible, pointing at the
	// stored secret version, and appends the audit event.
	FinishCreateIntegration(ctx context.Context, org, id uuid.UUID, secretVersion int64) (Integration, error)
	GetIntegration(ctx context.Context, org, id uuid.UUID) (Integration, error)
	ListIntegrations(ctx context.Context, org uuid.UUID, f Filter, p page.Request) ([]Integration, error)
	UpdateIntegration(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Integration) error) (Integration, error)
	// DeleteIntegration deletes the row and enqueues its secret's
	// destruction in the same transaction.
	DeleteIntegration(ctx context.Context, org, id uuid.UUID, version int64) (SecretDestruction, error)

	// ReapPendingIntegrations deletes pending rows created before cutoff
	// (and their request IDs) and enqueues their secrets' destruction.
	ReapPendingIntegrations(ctx context.Context, cutoff time.Time) (int, error)
	// ClaimSecretDestructions leases up to limit due outbox entries for
	// this caller (others skip them) and passes them to fn; entries fn
	// reports done are removed, the others are retried later with backoff.
	ClaimSecretDestructions(ctx context.Context, limit int, fn func(SecretDestruction) error) (claimed, done int, err error)
	// DoneSecretDestruction removes one outbox entry.
	DoneSecretDestruction(ctx context.Context, id int64) error
	// QueueSecretDestruction queues a path whose row is gone (a write
	// that landed after the row was deleted or reaped).
	QueueSecretDestruction(ctx context.Context, org uuid.UUID, path string) error
}

// SecretStore keeps client secrets (Vault KV v2).
type SecretStore interface {
	// PutClientSecret writes a new version with check-and-set: cas is the
	// version the caller last saw, 0 for "must not exist yet". It returns
	// the new version. A CAS mismatch is an Aborted error.
	PutClientSecret(ctx context.Context, path, secret string, cas int64) (int64, error)
	// CurrentVersion returns the latest version at path, 0 if none.
	CurrentVersion(ctx context.Context, path string) (int64, error)
	// ReadClientSecret returns one version's value.
	ReadClientSecret(ctx context.Context, path string, version int64) (string, error)
	// Destroy soft-deletes, then destroys every version and the metadata.
	// Destroying a missing path succeeds.
	Destroy(ctx context.Context, path string) error
}
