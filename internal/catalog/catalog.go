// Package catalog is the permission catalog: what each integration kind and
// feature requires in the customer tenant, as versioned data. It is the one
// source for the API (GetPermissionCatalog), provisioning (which app roles
// to grant) and verification (required vs granted, missing and extra).
//
// Role IDs are those of Microsoft's global cloud; callers resolve app-role
// IDs per cloud at run time from the resource service principal's appRoles
// by Value, since IDs can differ between clouds.
package catalog

import (
	"slices"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

// Version identifies this catalog; bump it with every change of Entries.
const Version = "2026-11-30.2"

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
	Kind          integration.Kind
	Feature       integration.Feature // "" for the base integration
	Type          Type
	ResourceAppID string
	ResourceName  string
	Value         string // permission value or role name
	ID            string // app role ID or role definition ID (global cloud)
	Requirement   Requirement
	TokenScope    string
	Note          string
}

const (
	graphScope    = "https://graph.microsoft.com/.default"
	defenderScope = "https://api.securitycenter.microsoft.com/.default"
	exchangeScope = "https://outlook.office365.com/.default"
	laScope       = "https://api.loganalytics.io/.default"
	armScope      = "https://management.azure.com/.default"
	casScope      = "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default"
)

var (
	defender = integration.KindDefender
	sentinel = integration.KindSentinel
)

// noteSecurityEvents: what SecurityEvents.Read.All still grants once the
// legacy alerts API is gone; no check probes it.
const noteSecurityEvents = "Graph's legacy security alerts API (/security/alerts) is retired: it stopped returning data on " +
	"2026-08-31 (https://learn.microsoft.com/en-us/graph/alertsv1-alertsv2-migration; alerts and incidents are read through " +
	"/security/alerts_v2 and /security/incidents with SecurityAlert.Read.All and SecurityIncident.Read.All). This permission " +
	"still grants Secure Score (/security/secureScores, /security/secureScoreControlProfiles: " +
	"https://learn.microsoft.com/en-us/graph/api/security-list-securescores); no check probes it."

// noteSentinelReader: the Sentinel role, verified by the check's
// azure-roles step (internal/verify/azureroles.go).
const noteSentinelReader = "On the workspace's resource group (or the workspace, or inherited from the subscription). Its actions " +
	"(https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security#microsoft-sentinel-reader) include " +
	"Microsoft.SecurityInsights/*/read (incidents: https://learn.microsoft.com/rest/api/securityinsights/incidents/list), " +
	"Microsoft.OperationalInsights/workspaces/*/read and workspaces/query/read, and Microsoft.Authorization/*/read (so the app can " +
	"read its own role assignments). Reader or Log Analytics Reader alone read the workspace but are not Sentinel roles."

// Entries is the catalog (reference: Dropzone setup guide and Microsoft's
// permission reference; "inferred" entries are marked in Note).
var Entries = []Entry{
	{defender, "", TypeApplication, GraphAppID, "Microsoft Graph", "AuditLog.Read.All", "b0afded3-3588-46d8-8b3d-9842eff778da", Required, graphScope, "Sign-in and audit logs (confirmed in the Dropzone guide)."},
	{defender, "", TypeApplication, GraphAppID, "Microsoft Graph", "SecurityAlert.Read.All", "472e4a4d-bb4a-4026-98d1-0b0d74cb74a5", Required, graphScope, "Security alerts v2 (inferred)."},
	{defender, "", TypeApplication, GraphAppID, "Microsoft Graph", "SecurityIncident.Read.All", "45cc0394-e837-488b-a098-1918f48d186c", Required, graphScope, "Security incidents (inferred)."},
	{defender, "", TypeApplication, GraphAppID, "Microsoft Graph", "User.Read.All", "df021288-bdef-4463-88db-98f22de89214", Required, graphScope, "User context for alerts (inferred)."},
	{defender, "", TypeApplication, GraphAppID, "Microsoft Graph", "ThreatHunting.Read.All", "dd98c7f5-2d42-42d3-a0e4-633161547251", Optional, graphScope, "Advanced hunting queries (inferred)."},
	{defender, integration.FeatureCloudApps, TypeApplication, CloudAppSecAppID, "Microsoft Cloud App Security", "investigation.read", "83bc8d83-2679-44ef-b813-d5f556fc4474", Optional, casScope, "Defender for Cloud Apps investigation."},
	{defender, integration.FeatureLiveResponse, TypeApplication, DefenderATPAppID, "WindowsDefenderATP", "Machine.LiveResponse", "1629b959-c0af-42a1-92f0-f6162060bdf1", Optional, defenderScope, "Defender for Endpoint live response."},
	{defender, integration.FeatureLiveResponse, TypeApplication, DefenderATPAppID, "WindowsDefenderATP", "Machine.Read.All", "ea8291d3-4b9a-44b5-bc3a-6cea3026dc79", Optional, defenderScope, "Device inventory for live response."},
	{defender, integration.FeatureExchange, TypeApplication, ExchangeAppID, "Office 365 Exchange Online", "Exchange.ManageAsApp", "dc50a0fb-09a3-484d-be87-e023b12c6440", Optional, exchangeScope, "Quarantined e-mail retrieval; also needs a directory role and the certificate credential."},
	{defender, integration.FeatureExchange, TypeDirectoryRole, "", "Microsoft Entra ID", "Security Reader", "5d6b6bb7-de71-4623-b4af-96380a352509", Optional, "", "Directory role for Exchange.ManageAsApp; Global Reader (f2ef992c-3afb-46b9-b7cf-a126ee74c451) or Exchange Administrator (29232cdf-9323-42fd-ade2-1d097af3e4de) also serve."},
	{sentinel, "", TypeApplication, LogAnalyticsAppID, "Log Analytics API", "Data.Read", "e8f6e161-84d0-4cd7-9441-2d46ec9ec3d5", Required, laScope, "Log Analytics queries (confirmed)."},
	{sentinel, "", TypeApplication, GraphAppID, "Microsoft Graph", "SecurityEvents.Read.All", "bf394140-e372-4bf9-a898-299cfc7564e5", Optional, graphScope, noteSecurityEvents},
	{sentinel, "", TypeAzureRole, "", "Azure Resource Manager", "Microsoft Sentinel Reader", "8d289c81-5878-46d4-8554-54e1e3d8b5cb", Required, armScope, noteSentinelReader},
	{sentinel, "", TypeAzureRole, "", "Azure Resource Manager", "Log Analytics Reader", "73c42c96-874c-492b-b04d-ab87d138a893", Optional, armScope, "Workspace reads; not needed with Microsoft Sentinel Reader, whose actions include the workspace query reads. Alone it is not enough: it is not a Sentinel role."},
	{sentinel, "", TypeAzureRole, "", "Azure Resource Manager", "Microsoft Sentinel Responder", "3e150937-b8fe-4cfb-8069-0eaf05ecd056", Alternative, armScope, "Replaces Microsoft Sentinel Reader when incidents are updated (Microsoft.SecurityInsights/incidents/*; https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security#microsoft-sentinel-responder)."},
}

// FeaturesOf lists the features valid for a kind.
func FeaturesOf(k integration.Kind) []integration.Feature {
	if k == integration.KindDefender {
		return []integration.Feature{integration.FeatureCloudApps, integration.FeatureLiveResponse, integration.FeatureExchange}
	}
	return nil
}

// For returns the entries of kind (every kind when empty) and its base plus
// the given features (every feature when features is nil).
func For(kind integration.Kind, features []integration.Feature) []Entry {
	var out []Entry
	for _, e := range Entries {
		if kind != "" && e.Kind != kind {
			continue
		}
		if features != nil && e.Feature != "" && !slices.Contains(features, e.Feature) {
			continue
		}
		out = append(out, e)
	}
	return out
}
