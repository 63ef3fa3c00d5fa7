// Package tenant holds the tenant resource: a customer's Microsoft Entra
// tenant in one of Microsoft's clouds.
package tenant

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
)

// Cloud is a Microsoft cloud, stored by its stable slug.
type Cloud string

// The clouds.
const (
	CloudGlobal       Cloud = "global"
	CloudUSGovGCCHigh Cloud = "us-gov-gcc-high"
	CloudUSGovDoD     Cloud = "us-gov-dod"
	CloudChina        Cloud = "china"
)

// Tenant is a customer's Entra tenant.
type Tenant struct {
	Org           uuid.UUID
	ID            uuid.UUID
	EntraTenantID uuid.UUID
	Cloud         Cloud
	DisplayName   string
	Labels        map[string]string
	CreateTime    time.Time
	UpdateTime    time.Time
	Version       int64
	// ProvisionerConsentTime is when a tenant administrator consented the
	// organization's provisioner application; nil before that.
	ProvisionerConsentTime *time.Time
}

// Store persists tenants; every method is scoped by organization.
type Store interface {
	CreateTenant(ctx context.Context, t Tenant, key idempotency.Key) (Tenant, error)
	GetTenant(ctx context.Context, org, id uuid.UUID) (Tenant, error)
	ListTenants(ctx context.Context, org uuid.UUID, p page.Request) ([]Tenant, error)
	UpdateTenant(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*Tenant) error) (Tenant, error)
	DeleteTenant(ctx context.Context, org, id uuid.UUID, version int64) error
}
