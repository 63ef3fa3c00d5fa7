// Package sharedapp is shared mode (issue 8 item 12; docs/shared-mode.md):
// beside the guide's dedicated application per tenant, an organization
// registers its own multi-tenant integration application per kind, made in
// its home tenant (client ID in Postgres, client secret in Vault at one path
// per shared application). Each customer tenant consents it once through an
// admin-consent link (the consent package's machinery: single-use state,
// bound to the organization, the tenant and the shared application); an
// integration in management mode "shared" then uses the shared
// application's credential in that tenant: tokens for tenant X with the
// shared application's client ID and secret. Nothing is created in the
// customer tenant by dzconnect.
package sharedapp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// ModeShared is the management mode of an integration that uses the
// organization's shared application.
const ModeShared = integration.ModeShared

// App is an organization's shared (multi-tenant) integration application of
// one kind. The secret's value is only in Vault.
type App struct {
	Org         uuid.UUID
	Kind        integration.Kind
	ClientID    uuid.UUID
	DisplayName string
	// Features are the optional features its requiredResourceAccess covers;
	// its integrations have them.
	Features      []integration.Feature
	SecretPath    string
	SecretVersion int64      // 0 until the first Vault write finished (invisible)
	SecretEndTime *time.Time // when the secret expires in the home tenant, when known
	CreateTime    time.Time
	UpdateTime    time.Time
	Version       int64
}

// Visible reports whether the application's secret is stored: until then
// the row is bookkeeping of an unfinished create.
func (a App) Visible() bool { return a.SecretVersion > 0 }

// Consent is a tenant's admin consent of a shared application.
type Consent struct {
	Org, Tenant uuid.UUID
	Kind        integration.Kind
	ClientID    uuid.UUID
	Time        time.Time
}

// Store persists shared applications, their tenants' consents and which
// integrations use them. Every method runs in the caller's unit of work and
// none opens a transaction; all are scoped by organization.
type Store interface {
	// InsertSharedApp inserts a with secret version 0 (invisible).
	InsertSharedApp(ctx context.Context, tx uow.Tx, a App) (App, error)
	// GetSharedApp reads one, visible or not (NotFound when absent).
	GetSharedApp(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) (App, error)
	// GetSharedAppForUpdate is GetSharedApp with a row lock until tx ends.
	GetSharedAppForUpdate(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) (App, error)
	// ListSharedApps lists the visible ones, by kind.
	ListSharedApps(ctx context.Context, tx uow.Tx, org uuid.UUID) ([]App, error)
	// SetSharedAppSecret pairs the row with a stored secret version (and
	// its end time) and bumps its version.
	SetSharedAppSecret(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind, version int64, end *time.Time) (App, error)
	// DeleteSharedApp deletes the row; refused (FailedPrecondition) while
	// integrations use it.
	DeleteSharedApp(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) error
	// CountSharedIntegrations counts the integrations using the application.
	CountSharedIntegrations(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) (int64, error)
	// InsertSharedIntegration records that an integration uses the
	// application of kind.
	InsertSharedIntegration(ctx context.Context, tx uow.Tx, org, integrationID uuid.UUID, kind integration.Kind) error
	// GetSharedIntegrationApp reads the application an integration uses
	// (NotFound when it uses none).
	GetSharedIntegrationApp(ctx context.Context, tx uow.Tx, org, integrationID uuid.UUID) (App, error)
	// GetSharedConsent reads a tenant's consent (NotFound when none).
	GetSharedConsent(ctx context.Context, tx uow.Tx, org, tenant uuid.UUID, kind integration.Kind) (Consent, error)
}

// SecretPath is where a shared application's client secret lives in Vault,
// relative to the configured mount and prefix.
func SecretPath(org uuid.UUID, kind integration.Kind) string {
	return fmt.Sprintf("organizations/%s/shared-applications/%s/client-secret", org, kind)
}

// Manifest is the fragment of the application manifest the organization
// configures on its shared application: multi-tenant, and the catalog's
// application permissions for the kind and features as
// requiredResourceAccess (what the tenant's admin consent grants).
type Manifest struct {
	SignInAudience         string           `json:"signInAudience"`
	RequiredResourceAccess []ResourceAccess `json:"requiredResourceAccess"`
}

// ResourceAccess is one resource API's entry of requiredResourceAccess
// (Graph's requiredResourceAccess resource type).
type ResourceAccess struct {
	ResourceAppID  string       `json:"resourceAppId"`
	ResourceAccess []AccessItem `json:"resourceAccess"`
}

// AccessItem is one application permission (type Role) by app role ID.
type AccessItem struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// ManifestFor builds the manifest fragment from the catalog: every
// application permission (required and optional) of the kind and features,
// grouped by resource in catalog order. Role IDs are the global cloud's.
func ManifestFor(cat *catalog.Catalog, kind integration.Kind, features []integration.Feature) Manifest {
	if features == nil {
		features = []integration.Feature{}
	}
	m := Manifest{SignInAudience: "AzureADMultipleOrgs", RequiredResourceAccess: []ResourceAccess{}}
	idx := map[string]int{}
	for _, e := range cat.For(kind, features) {
		if e.Type != catalog.TypeApplication {
			continue
		}
		i, ok := idx[e.ResourceAppID]
		if !ok {
			i = len(m.RequiredResourceAccess)
			idx[e.ResourceAppID] = i
			m.RequiredResourceAccess = append(m.RequiredResourceAccess, ResourceAccess{ResourceAppID: e.ResourceAppID})
		}
		m.RequiredResourceAccess[i].ResourceAccess = append(m.RequiredResourceAccess[i].ResourceAccess, AccessItem{ID: e.ID, Type: "Role"})
	}
	return m
}

// JSON renders the fragment as indented JSON, ready to paste.
func (m Manifest) JSON() string {
	b, _ := json.MarshalIndent(m, "", "  ") // plain structs of strings always marshal
	return string(b)
}

// TenantSteps lists what the catalog needs in each tenant beyond admin
// consent (Azure roles, directory roles): the customer grants them to the
// shared application's service principal there.
func TenantSteps(cat *catalog.Catalog, kind integration.Kind, features []integration.Feature) []string {
	if features == nil {
		features = []integration.Feature{}
	}
	var out []string
	for _, e := range cat.For(kind, features) {
		switch {
		case e.Requirement != catalog.Required && !slices.Contains(features, e.Feature):
			continue
		case e.Type == catalog.TypeAzureRole:
			out = append(out, fmt.Sprintf("Azure role %q on the Sentinel workspace's resource group for the shared application's service principal", e.Value))
		case e.Type == catalog.TypeDirectoryRole:
			out = append(out, fmt.Sprintf("Entra directory role %q for the shared application's service principal", e.Value))
		}
	}
	return out
}
