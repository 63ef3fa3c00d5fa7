// Package tenant holds the tenant resource: a customer's Microsoft Entra
// tenant in one of Microsoft's clouds.
package tenant

import (
	"time"

	"github.com/google/uuid"
)

// Cloud is a Microsoft cloud, stored by its stable slug.
type Cloud string

// The clouds.
const (
	CloudGlobal       Cloud = "global"
	CloudUSGovGCCHigh Cloud = "us-gov-gcc-high"
	CloudUSGovDoD     Cloud = "us-gov-dod"
	CloudChina        Cloud = "china"
	// CloudUSGovGCC is US Government GCC (moderate): global sign-in and
	// Graph, Defender for Endpoint's GCC API host.
	CloudUSGovGCC Cloud = "us-gov-gcc"
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
