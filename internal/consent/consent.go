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
}

// Callback is what Microsoft sent to the redirect URI, as the caller
// forwards it.
type Callback struct {
	State            string
	AdminConsent     string // "True" on success
	Tenant           string // the Entra tenant ID Microsoft says consented
	Error            string
	ErrorDescription string
}

// Link is an admin-consent link.
type Link struct {
	URL        string
	ExpireTime time.Time
}

// Store persists provisioners and consent requests. Writes append an audit
// event in the same transaction.
type Store interface {
	GetOrganization(ctx context.Context, id uuid.UUID) (organization.Organization, error)
	Conn() uow.Tx
	GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error)
	// BeginSetProvisioner returns the organization and records path as its
	// provisioner secret's path when none is recorded yet, so that the
	// secret about to be written to Vault is destroyed with the
	// organization even if the call goes no further.
	BeginSetProvisioner(ctx context.Context, org uuid.UUID, path string) (organization.Organization, error)
	// FinishSetProvisioner records the client ID with the Vault version of
	// its secret. A row already pointing at a version >= version (a
	// concurrent call stored a newer secret) is left alone: Aborted. When
	// the client ID changes, the tenants' provisioner_consent_time is
	// cleared and the unused consent requests are deleted.
	FinishSetProvisioner(ctx context.Context, org, clientID uuid.UUID, version int64) (organization.Organization, error)
	// CreateConsentRequest records a link's state (NotFound without the tenant).
	CreateConsentRequest(ctx context.Context, r Request) error
	// CompleteConsentRequest locks the request of stateHash in org (NotFound
	// when there is none) and its tenant, and calls decide. When decide
	// returns an error nothing is written. Otherwise the request is marked
	// used with the result and, when consented, the tenant's
	// provisioner_consent_time is set, in one transaction. It returns the
	// tenant as committed.
	CompleteConsentRequest(ctx context.Context, org uuid.UUID, stateHash []byte, decide func(Request, tenant.Tenant) (Result, error)) (tenant.Tenant, error)
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
