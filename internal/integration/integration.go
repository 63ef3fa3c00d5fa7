// Package integration holds the integration resource (one Dropzone
// integration in a customer tenant), its credentials, and its use cases.
// Credential values live only in Vault (SecretStore), one path per
// credential; Postgres (Store) holds everything else, including each
// credential's Vault path and version. The use cases own their
// transactions (uow.Runner) and pass them to every store call.
package integration

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/uow"
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
	// ModeShared: the integration uses the organization's shared
	// multi-tenant application of its kind (package sharedapp); it has no
	// credential of its own.
	ModeShared Mode = "shared"
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
	// StateProvisioning: a provision operation is making it; checks start
	// when the operation's verify step records the first outcome.
	StateProvisioning State = "provisioning"
	// StateDeprovisioning: a deprovision operation is removing it; the
	// sweep skips it. A deprovision that fails or is canceled leaves it
	// unverified (its end hook), so the next check decides.
	StateDeprovisioning State = "deprovisioning"
)

// Sentinel locates a Sentinel integration's Log Analytics workspace.
type Sentinel struct {
	SubscriptionID uuid.UUID
	ResourceGroup  string
	WorkspaceName  string
	WorkspaceID    uuid.UUID
}

// CredentialType says what kind of credential a row is.
type CredentialType string

// The credential types.
const (
	CredentialClientSecret CredentialType = "client_secret"
	CredentialCertificate  CredentialType = "certificate"
)

// CredentialSource says who made a credential.
type CredentialSource string

// The credential sources.
const (
	SourceCustomer    CredentialSource = "customer"    // made by the customer admin and handed over
	SourceProvisioned CredentialSource = "provisioned" // made by dzconnect through Graph
)

// CredentialState is where a credential is in its lifecycle.
type CredentialState string

// The credential states. At most one credential of an integration is
// active: the one checks and tokens use. During a rotation's overlap the
// new one is pending and the one it replaces is retiring.
const (
	CredentialPending  CredentialState = "pending"  // value not yet stored in Vault
	CredentialActive   CredentialState = "active"   // in use
	CredentialRetiring CredentialState = "retiring" // replaced; kept in Vault for the overlap
	CredentialRemoved  CredentialState = "removed"  // value destroyed; the row is history
)

// Credential is one client secret or certificate of an integration: its
// metadata and where its value is in Vault, never the value.
type Credential struct {
	Org, Integration, ID uuid.UUID
	Type                 CredentialType
	KeyID                uuid.NullUUID // Entra key ID, when known
	Hint                 string        // first characters Entra shows, when known
	StartTime            *time.Time    // valid from (Entra), when known
	EndTime              *time.Time    // expires (Entra), when known
	SecretPath           string        // Vault KV v2 path, one per credential
	SecretVersion        int64         // Vault version; 0 while pending
	Source               CredentialSource
	State                CredentialState
	ExpiryWarnTime       *time.Time // when the credential-expiring event went out for this credential
	OverlapEnd           *time.Time // retiring: when the retirer removes it (docs/credentials.md)
	RenewalNotBefore     *time.Time // automatic renewal leaves it alone until then (a renewal started or failed)
	CreateTime           time.Time
	UpdateTime           time.Time
}

// CredentialMeta is the part of a credential a caller may set.
type CredentialMeta struct {
	KeyID   uuid.NullUUID
	Hint    string
	EndTime *time.Time
}

// Meta returns c's caller-settable metadata.
// HasKeyID reports whether keyID, as Entra writes it, is the credential's
// Entra key ID.
func (c Credential) HasKeyID(keyID string) bool {
	return c.KeyID.Valid && strings.EqualFold(keyID, c.KeyID.UUID.String())
}

// EndsAt reports whether end is the credential's recorded end date: equal
// to the second (Entra and Postgres keep different sub-second precision).
func (c Credential) EndsAt(end time.Time) bool {
	if c.EndTime == nil {
		return false
	}
	d := c.EndTime.Sub(end)
	return d > -time.Second && d < time.Second
}

func (c Credential) Meta() CredentialMeta {
	return CredentialMeta{KeyID: c.KeyID, Hint: c.Hint, EndTime: c.EndTime}
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
	// Credentials are the integration's credentials, oldest first (Get,
	// List); a check target carries only the active one.
	Credentials     []Credential
	State           State
	LastCheckTime   *time.Time
	StateChangeTime *time.Time // when State last changed
	Pending         bool
	CreateTime      time.Time
	UpdateTime      time.Time
	Version         int64
}

// Active returns the active credential, if there is one.
func (i Integration) Active() (Credential, bool) {
	for _, c := range i.Credentials {
		if c.State == CredentialActive {
			return c, true
		}
	}
	return Credential{}, false
}

// Filter narrows a listing.
type Filter struct {
	Tenant uuid.UUID // uuid.Nil: every tenant
	Kind   Kind      // "": any
	State  State     // "": any
	// ExpireBefore keeps integrations whose active credential expires
	// before it (zero: any).
	ExpireBefore time.Time
}

// ProvisionedObjects is what provisioning made in Entra or Azure for an
// integration (Store.SetProvisionedObjects): the set fields are written,
// the others kept.
type ProvisionedObjects struct {
	ClientID         uuid.NullUUID
	AppObjectID      uuid.NullUUID
	ServicePrincipal uuid.NullUUID
	Sentinel         *Sentinel
}

// Store persists integrations and their credentials. Every method runs in
// the caller's unit of work and none opens a transaction; every method is
// scoped by organization except the background ones (stale pending rows).
type Store interface {
	// SetProvisionedObjects writes o's set fields on the integration in one
	// statement, bumping its version (NotFound when it is gone).
	SetProvisionedObjects(ctx context.Context, tx uow.Tx, org, id uuid.UUID, o ProvisionedObjects) error
	// LockTenant keeps the tenant from being deleted until tx ends
	// (NotFound when it does not exist).
	LockTenant(ctx context.Context, tx uow.Tx, org, tenant uuid.UUID) error
	// InsertIntegration inserts in as a pending (invisible) row.
	InsertIntegration(ctx context.Context, tx uow.Tx, in Integration) (Integration, error)
	// GetIntegration returns a visible integration with its credentials.
	GetIntegration(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Integration, error)
	// GetIntegrationIncludingPending is GetIntegration for pending rows too.
	GetIntegrationIncludingPending(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Integration, error)
	// GetIntegrationForUpdate is GetIntegration with a row lock until tx ends.
	GetIntegrationForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Integration, error)
	// ListIntegrations lists visible integrations with their credentials.
	ListIntegrations(ctx context.Context, tx uow.Tx, org uuid.UUID, f Filter, p page.Request) ([]Integration, error)
	// UpdateIntegration writes in's settings and state and bumps its version.
	UpdateIntegration(ctx context.Context, tx uow.Tx, in Integration) (Integration, error)
	// MakeIntegrationVisible ends a pending row's pendency (NotFound when
	// it is not pending or gone).
	MakeIntegrationVisible(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Integration, error)
	DeleteIntegration(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error

	// InsertCredential inserts c as pending.
	InsertCredential(ctx context.Context, tx uow.Tx, c Credential) (Credential, error)
	// ActivateCredential makes a pending credential active at the stored
	// Vault version (NotFound when it is not pending or gone).
	ActivateCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID, secretVersion int64) (Credential, error)
	SetCredentialState(ctx context.Context, tx uow.Tx, org, id uuid.UUID, state CredentialState) (Credential, error)
	// UpdateCredential writes c's metadata (key ID, hint, start and end
	// time, expiry warning time).
	UpdateCredential(ctx context.Context, tx uow.Tx, c Credential) (Credential, error)
	// DeleteCredential deletes one credential row (none: no error).
	DeleteCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error

	// ListStalePendingCredentials locks, in every organization, the
	// pending credentials created before cutoff whose secret was never
	// recorded as stored.
	ListStalePendingCredentials(ctx context.Context, tx uow.Tx, cutoff time.Time) ([]Credential, error)
	// DeletePendingIntegrations deletes, in every organization, the
	// pending integrations created before cutoff and returns them.
	DeletePendingIntegrations(ctx context.Context, tx uow.Tx, cutoff time.Time) ([]Integration, error)
	// DeleteRequestKeys forgets the request IDs that created resourceName.
	DeleteRequestKeys(ctx context.Context, tx uow.Tx, org uuid.UUID, resourceName string) error
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

// Equal reports whether m and o describe the same credential.
func (m CredentialMeta) Equal(o CredentialMeta) bool {
	return m.KeyID == o.KeyID && m.Hint == o.Hint && timeEqual(m.EndTime, o.EndTime)
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// withMeta returns c with m's metadata; a new end time clears the expiry
// warning, so a credential still inside the window is announced again.
func (c Credential) withMeta(m CredentialMeta) Credential {
	if !timeEqual(c.EndTime, m.EndTime) {
		c.ExpiryWarnTime = nil
	}
	c.KeyID, c.Hint, c.EndTime = m.KeyID, m.Hint, m.EndTime
	return c
}
