// Package organization holds the organization resource: an API customer
// (an MSSP or an internal platform) owning every other resource.
package organization

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
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
}

// Store persists organizations. Writes append an audit event in the same
// transaction.
type Store interface {
	CreateOrganization(ctx context.Context, o Organization, key idempotency.Key) (Organization, error)
	GetOrganization(ctx context.Context, id uuid.UUID) (Organization, error)
	ListOrganizations(ctx context.Context, p page.Request) ([]Organization, error)
	// UpdateOrganization applies mutate to the current row; version 0 skips
	// the etag check.
	UpdateOrganization(ctx context.Context, id uuid.UUID, version int64, mutate func(*Organization) error) (Organization, error)
	DeleteOrganization(ctx context.Context, id uuid.UUID, version int64) error
}
