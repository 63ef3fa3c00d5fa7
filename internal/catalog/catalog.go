// Package catalog is the permission catalog: what each integration kind and
// feature requires in the customer tenant, as versioned data. It is the one
// source for the API (GetPermissionCatalog), provisioning (which app roles
// to grant) and verification (required vs granted, missing and extra).
//
// The catalog is data (docs/verification.md, "The permission catalog"): an
// embedded default (default.json), which --catalog-file replaces as a
// whole, and per-organization overrides of required/optional
// (organization.Service's PermissionCatalogOverride) applied on top
// (Catalog.Apply). Every entry cites its source. The default marks as
// required only what Dropzone's setup guide and its published integration
// pages name; everything else is optional.
//
// Role IDs are those of Microsoft's global cloud; callers resolve app-role
// IDs per cloud at run time from the resource service principal's appRoles
// by Value, since IDs can differ between clouds.
package catalog

import (
	"slices"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

// Type is how a permission is granted.
type Type string

// The permission types.
const (
	TypeApplication   Type = "application"    // app role on a resource API
	TypeAzureRole     Type = "azure-role"     // Azure RBAC role assignment
	TypeDirectoryRole Type = "directory-role" // Entra directory role
)

// Requirement says how much a permission matters.
type Requirement string

// The requirements.
const (
	Required    Requirement = "required"
	Optional    Requirement = "optional"
	Alternative Requirement = "alternative"
)

// Resource application IDs.
const (
	GraphAppID        = "00000003-0000-0000-c000-000000000000"
	DefenderATPAppID  = "fc780465-2017-40d4-a0c5-307022471b92"
	CloudAppSecAppID  = "05a65629-4c1b-48c1-a78b-804c4abdd4af"
	ExchangeAppID     = "00000002-0000-0ff1-ce00-000000000000"
	LogAnalyticsAppID = "ca7f3f0b-7d91-482c-8e09-c5d840d0eac5"
)

// Entry is one permission.
type Entry struct {
	Kind          integration.Kind    `json:"kind"`
	Feature       integration.Feature `json:"feature,omitempty"` // "" for the base integration
	Type          Type                `json:"type"`
	ResourceAppID string              `json:"resource_app_id,omitempty"`
	ResourceName  string              `json:"resource_name"`
	Value         string              `json:"value"` // permission value or role name
	ID            string              `json:"id"`    // app role ID or role definition ID (global cloud)
	Requirement   Requirement         `json:"requirement"`
	TokenScope    string              `json:"token_scope,omitempty"`
	Note          string              `json:"note,omitempty"`
	// Source is where the entry comes from: Dropzone's setup guide or
	// published integration page when it names the permission, else
	// Microsoft's reference for the API it grants.
	Source string `json:"source"`
}

// Catalog is one version of the catalog: the default, a --catalog-file, or
// either with an organization's overrides applied. It is immutable.
type Catalog struct {
	version string
	entries []Entry
}

// Version identifies the catalog: the file's version, plus "+org.N" when
// an organization's override revision N is applied.
func (c *Catalog) Version() string { return c.version }

// Entries returns a copy of every entry, in catalog order.
func (c *Catalog) Entries() []Entry { return slices.Clone(c.entries) }

// FeaturesOf lists the features valid for a kind.
func FeaturesOf(k integration.Kind) []integration.Feature {
	if k == integration.KindDefender {
		return []integration.Feature{integration.FeatureCloudApps, integration.FeatureLiveResponse, integration.FeatureExchange}
	}
	return nil
}

// For returns the entries of kind (every kind when empty) for its base
// integration plus the given features. No features (nil or empty) is the
// base integration only: an integration with no features enabled needs no
// feature's permissions (issue 10 item 9a). AllFeatures asks for every
// feature's entries.
func (c *Catalog) For(kind integration.Kind, features []integration.Feature) []Entry {
	var out []Entry
	for _, e := range c.entries {
		if kind != "" && e.Kind != kind {
			continue
		}
		if e.Feature != "" && !slices.Contains(features, e.Feature) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// AllFeatures returns the entries of kind (every kind when empty) with
// every feature's: the whole catalog, as GetPermissionCatalog lists it when
// no features are asked for.
func (c *Catalog) AllFeatures(kind integration.Kind) []Entry {
	var out []Entry
	for _, e := range c.entries {
		if kind == "" || e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Requirement returns the requirement of the application permission value
// on resource appID for kind, and false when the catalog has no such
// entry.
func (c *Catalog) Requirement(kind integration.Kind, resourceAppID, value string) (Requirement, bool) {
	for _, e := range c.entries {
		if e.Kind == kind && e.Type == TypeApplication && equalFold(e.ResourceAppID, resourceAppID) && e.Value == value {
			return e.Requirement, true
		}
	}
	return "", false
}
