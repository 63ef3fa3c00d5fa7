// Package consent holds the provisioned path's entry point: the
// organization's multi-tenant "provisioner" application (its client ID in
// Postgres, its client secret in Vault) and the admin consent a customer
// tenant's administrator gives it through a link dzconnect hands out.
//
// A link carries a state: 256 random bits, single use, valid for an hour,
// stored only as its SHA-256 and bound to the tenant it was issued for.
// Completion finds the tenant by the state, within the caller's
// organization, and only then compares the tenant Microsoft returned with
// that tenant's Entra ID: the returned tenant is never trusted to say which
// tenant consented (shared/reference/microsoft.md section 3).
package consent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Result is the recorded outcome of a used state.
type Result string

// The results.
const (
	ResultConsented      Result = "consented"
	ResultDeclined       Result = "declined"        // Microsoft returned an error, or admin_consent was not True
	ResultTenantMismatch Result = "tenant-mismatch" // the returned tenant is not the one the link was issued for
)

// Request is one admin-consent link handed out.
type Request struct {
	Org         uuid.UUID
	Tenant      uuid.UUID
	StateHash   []byte // SHA-256 of the state; the state itself is never stored
	RedirectURI string
	CreateTime  time.Time
	ExpireTime  time.Time
	UsedTime    *time.Time
	Result      Result // empty until used
	// SharedKind is empty for a link that consents the provisioner, else
	// the kind of the organization's shared application it consents.
	SharedKind string
	// Scope is the scope Microsoft's redirect returned (once used).
	Scope string
}

// Callback is what Microsoft sent to the redirect URI, as the caller
// forwards it.
type Callback struct {
	State            string
	AdminConsent     string // "True" on success (compared case-insensitively)
	Tenant           string // the Entra tenant ID Microsoft says consented
	Error            string
	ErrorDescription string
	// Scope is what Microsoft says was consented; recorded.
	Scope string
	// RedirectURI is the URL the redirect arrived at; it must be the
	// redirect URI the link was issued with.
	RedirectURI string
}

// Link is an admin-consent link.
type Link struct {
	URL        string
	ExpireTime time.Time
}

// Store persists provisioners and consent requests. Every method runs in
// the caller's unit of work; none opens a transaction or decides anything
// (which consents to forget, whether a state is spent: Service does).
type Store interface {
	GetOrganization(ctx context.Context, tx uow.Tx, id uuid.UUID) (organization.Organization, error)
	GetOrganizationForUpdate(ctx context.Context, tx uow.Tx, id uuid.UUID) (organization.Organization, error)
	// RecordProvisionerPath records path as the provisioner secret's path
	// when none is recorded yet (bookkeeping: no version bump).
	RecordProvisionerPath(ctx context.Context, tx uow.Tx, org uuid.UUID, path string) (organization.Organization, error)
	// SetProvisioner records the client ID with the Vault version of its
	// secret and bumps the organization's version.
	SetProvisioner(ctx context.Context, tx uow.Tx, org, clientID uuid.UUID, version int64) (organization.Organization, error)
	// LockTenant keeps the tenant from being deleted until tx ends
	// (NotFound when it does not exist).
	LockTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error
	GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error)
	GetTenantForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error)
	// SetTenantConsentTime sets (or, with nil, clears) the tenant's
	// provisioner_consent_time and bumps its version.
	SetTenantConsentTime(ctx context.Context, tx uow.Tx, org, id uuid.UUID, at *time.Time) (tenant.Tenant, error)
	// ListConsentedTenants lists the tenants with a provisioner consent.
	ListConsentedTenants(ctx context.Context, tx uow.Tx, org uuid.UUID) ([]uuid.UUID, error)
	// DeleteUnusedConsentRequests deletes the organization's outstanding links.
	DeleteUnusedConsentRequests(ctx context.Context, tx uow.Tx, org uuid.UUID) error
	// DeleteExpiredConsentRequests deletes a tenant's unused links that
	// expired before before.
	DeleteExpiredConsentRequests(ctx context.Context, tx uow.Tx, org, tenantID uuid.UUID, before time.Time) error
	InsertConsentRequest(ctx context.Context, tx uow.Tx, r Request) error
	// GetConsentRequestForUpdate reads and row-locks the request of
	// stateHash in org (NotFound when there is none).
	GetConsentRequestForUpdate(ctx context.Context, tx uow.Tx, org uuid.UUID, stateHash []byte) (Request, error)
	// RecordSharedConsent records (or renews) tenantID's consent of the
	// organization's shared application of kind.
	RecordSharedConsent(ctx context.Context, tx uow.Tx, org, tenantID uuid.UUID, kind string, at time.Time) error
	// GetSharedAppSecretRef reads the organization's shared application of
	// kind: its client ID and its secret's Vault path and version (0 until
	// the secret is stored). NotFound when there is none.
	GetSharedAppSecretRef(ctx context.Context, tx uow.Tx, org uuid.UUID, kind string) (clientID uuid.UUID, path string, version int64, err error)
	// MarkConsentRequestUsed spends the state with its result and the
	// scope Microsoft returned ("" when none).
	MarkConsentRequestUsed(ctx context.Context, tx uow.Tx, org uuid.UUID, stateHash []byte, result Result, scope string) error
}

// ProvisionerSecretPath is where an organization's provisioner client
// secret lives in Vault, relative to the configured mount and prefix.
func ProvisionerSecretPath(org uuid.UUID) string {
	return fmt.Sprintf("organizations/%s/provisioner/client-secret", org)
}

// HashState returns the stored form of a state.
func HashState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}
