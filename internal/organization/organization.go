// Package organization holds the organization resource: an API customer
// (an MSSP or an internal platform) owning every other resource.
package organization

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Organization is an API customer.
type Organization struct {
	ID          uuid.UUID
	DisplayName string
	CreateTime  time.Time
	UpdateTime  time.Time
	Version     int64

	// The multi-tenant provisioner application (SetOrganizationProvisioner):
	// its client ID (uuid.Nil until registered) and where its client secret
	// is in Vault (the value never leaves Vault). ProvisionerSecretPath may
	// be set while ProvisionerSecretVersion is still 0: the path is recorded
	// before the first Vault write.
	ProvisionerClientID      uuid.UUID
	ProvisionerSecretPath    string
	ProvisionerSecretVersion int64

	// CredentialOverlap is how long a credential replaced by a rotation
	// keeps working; CredentialRenewalThreshold is how much lifetime an
	// active credential has left when automatic renewal rotates it
	// (credentials.go has the bounds and defaults).
	CredentialOverlap          time.Duration
	CredentialRenewalThreshold time.Duration
}

// Store persists organizations. Every method runs in the caller's unit of
// work; none opens a transaction.
type Store interface {
	InsertOrganization(ctx context.Context, tx uow.Tx, o Organization) (Organization, error)
	GetOrganization(ctx context.Context, tx uow.Tx, id uuid.UUID) (Organization, error)
	// GetOrganizationForUpdate reads and row-locks an organization until tx
	// ends.
	GetOrganizationForUpdate(ctx context.Context, tx uow.Tx, id uuid.UUID) (Organization, error)
	ListOrganizations(ctx context.Context, tx uow.Tx, p page.Request) ([]Organization, error)
	// UpdateOrganization writes o's display name and credential settings
	// and bumps its version.
	UpdateOrganization(ctx context.Context, tx uow.Tx, o Organization) (Organization, error)
	// DeleteOrganization deletes the row, and with it its API keys and
	// webhooks, and the organization's request IDs. Tenants must be gone
	// (FailedPrecondition).
	DeleteOrganization(ctx context.Context, tx uow.Tx, id uuid.UUID) error
	// ListWebhookSecretPaths lists the Vault paths of the organization's
	// webhook signing secrets.
	ListWebhookSecretPaths(ctx context.Context, tx uow.Tx, id uuid.UUID) ([]string, error)
	// ListSharedSecretPaths lists the Vault paths of the organization's
	// shared applications' secrets (shared mode).
	ListSharedSecretPaths(ctx context.Context, tx uow.Tx, id uuid.UUID) ([]string, error)
}
