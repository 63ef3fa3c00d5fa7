package directory

// Well-known first-party application IDs.
const (
	GraphAppID        = "00000003-0000-0000-c000-000000000000"
	DefenderAppID     = "fc780465-2017-40d4-a0c5-307022471b92" // WindowsDefenderATP
	CloudAppsAppID    = "05a65629-4c1b-48c1-a78b-804c4abdd4af" // Microsoft Cloud App Security
	ExchangeAppID     = "00000002-0000-0ff1-ce00-000000000000" // Office 365 Exchange Online
	LogAnalyticsAppID = "ca7f3f0b-7d91-482c-8e09-c5d840d0eac5" // Log Analytics API
	ARMAppID          = "797f4846-ba00-4fd7-ba43-dac1f8f63013" // Windows Azure Service Management API
)

// Licence names a product a tenant may lack. A missing licence removes the
// product's resource service principal (token requests for it fail with
// AADSTS500011) and makes its data-plane probes answer 403 "not licensed".
const (
	LicenceDefender     = "defender"      // WindowsDefenderATP + Graph security alerts/incidents
	LicenceCloudApps    = "cloud_apps"    // Microsoft Cloud App Security
	LicenceExchange     = "exchange"      // Exchange Online
	LicenceLogAnalytics = "log_analytics" // Log Analytics API (Sentinel)
	LicenceEntraP1      = "entra_id_p1"   // sign-in logs (auditLogs/signIns)
)

// AllLicences is what a tenant gets unless told otherwise.
var AllLicences = []string{LicenceDefender, LicenceCloudApps, LicenceExchange, LicenceLogAnalytics, LicenceEntraP1}

type firstParty struct {
	appID   string
	name    string
	names   []string // servicePrincipalNames: token audiences for this resource
	licence string
	roles   []AppRole
}

// Role IDs are Microsoft's (Graph permissions reference and each API's
// manifest) for the global cloud.
var firstParties = []firstParty{
	{
		appID: GraphAppID, name: "Microsoft Graph",
		names: []string{"https://graph.microsoft.com", "https://graph.microsoft.us", "https://dod-graph.microsoft.us",
			"https://microsoftgraph.chinacloudapi.cn", "https://canary.graph.microsoft.com", GraphAppID},
		roles: []AppRole{
			{ID: "b0afded3-3588-46d8-8b3d-9842eff778da", Value: "AuditLog.Read.All", DisplayName: "Read all audit log data"},
			{ID: "472e4a4d-bb4a-4026-98d1-0b0d74cb74a5", Value: "SecurityAlert.Read.All", DisplayName: "Read all security alerts"},
			{ID: "ed4fca05-be46-441f-9803-1873825f8fdb", Value: "SecurityAlert.ReadWrite.All", DisplayName: "Read and write to all security alerts"},
			{ID: "45cc0394-e837-488b-a098-1918f48d186c", Value: "SecurityIncident.Read.All", DisplayName: "Read all security incidents"},
			{ID: "34bf0e97-1971-4929-b999-9e2442d941d7", Value: "SecurityIncident.ReadWrite.All", DisplayName: "Read and write to all security incidents"},
			{ID: "bf394140-e372-4bf9-a898-299cfc7564e5", Value: "SecurityEvents.Read.All", DisplayName: "Read your organization's security events"},
			{ID: "dd98c7f5-2d42-42d3-a0e4-633161547251", Value: "ThreatHunting.Read.All", DisplayName: "Run hunting queries"},
			{ID: "df021288-bdef-4463-88db-98f22de89214", Value: "User.Read.All", DisplayName: "Read all users' full profiles"},
			{ID: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", Value: "Application.Read.All", DisplayName: "Read all applications"},
			{ID: "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", Value: "Application.ReadWrite.All", DisplayName: "Read and write all applications"},
			{ID: "18a4783c-866b-4cc7-a460-3d5e5662c884", Value: "Application.ReadWrite.OwnedBy", DisplayName: "Manage apps that this app creates or owns"},
			{ID: "06b708a9-e830-4db3-a914-8e69da51d44f", Value: "AppRoleAssignment.ReadWrite.All", DisplayName: "Manage app permission grants and app role assignments"},
			{ID: "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8", Value: "RoleManagement.ReadWrite.Directory", DisplayName: "Read and write all directory RBAC settings"},
			{ID: "483bed4a-2ad3-4361-a73b-c83ccdbdc53c", Value: "RoleManagement.Read.Directory", DisplayName: "Read all directory RBAC settings"},
			{ID: "246dd0d5-5bd0-4def-940b-0421030a5b68", Value: "Policy.Read.All", DisplayName: "Read your organization's policies"},
			// The ID of Policy.Read.ApplicationConfiguration was not found in the
			// stored copies of Microsoft's permissions reference (the pages read
			// list the permission, not its ID): this one is the simulator's own,
			// marked so (…-000000000000 tail). Replace it when the reference is read.
			{ID: "5fd1c29f-2d5d-4b58-a1a4-000000000000", Value: "Policy.Read.ApplicationConfiguration", DisplayName: "Read your organization's application configuration policies"},
			{ID: "be74164b-cff1-491c-8741-e671cb536e13", Value: "Policy.ReadWrite.ApplicationConfiguration", DisplayName: "Read and write your organization's application configuration policies"},
			{ID: "7ab1d382-f21e-4acd-a863-ba3e13f7da61", Value: "Directory.Read.All", DisplayName: "Read directory data"},
			{ID: "19dbc75e-c2e2-444c-a770-ec69d8559fc7", Value: "Directory.ReadWrite.All", DisplayName: "Read and write directory data"},
			{ID: "498476ce-e0fe-48b0-b801-37ba7e2685c6", Value: "Organization.Read.All", DisplayName: "Read organization information"},
		},
	},
	{
		appID: DefenderAppID, name: "WindowsDefenderATP", licence: LicenceDefender,
		names: []string{"https://api.securitycenter.microsoft.com", "https://securitycenter.onmicrosoft.com/windowsatpservice",
			"https://api.security.microsoft.com", "https://api-gov.securitycenter.microsoft.us",
			"https://api-gcc.securitycenter.microsoft.us", DefenderAppID},
		roles: []AppRole{
			{ID: "1629b959-c0af-42a1-92f0-f6162060bdf1", Value: "Machine.LiveResponse", DisplayName: "Run live response on a specific machine"},
			{ID: "ea8291d3-4b9a-44b5-bc3a-6cea3026dc79", Value: "Machine.Read.All", DisplayName: "Read all machine profiles"},
			{ID: "71fe6b80-7034-4028-9ed8-0f316df9c3ff", Value: "Alert.Read.All", DisplayName: "Read all alerts"},
		},
	},
	{
		appID: CloudAppsAppID, name: "Microsoft Cloud App Security", licence: LicenceCloudApps,
		names: []string{CloudAppsAppID, "https://portal.cloudappsecurity.com"},
		roles: []AppRole{
			{ID: "83bc8d83-2679-44ef-b813-d5f556fc4474", Value: "investigation.read", DisplayName: "Read investigation data"},
		},
	},
	{
		appID: ExchangeAppID, name: "Office 365 Exchange Online", licence: LicenceExchange,
		names: []string{"https://outlook.office365.com", "https://outlook.office.com", "https://outlook.office365.us", ExchangeAppID},
		roles: []AppRole{
			{ID: "dc50a0fb-09a3-484d-be87-e023b12c6440", Value: "Exchange.ManageAsApp", DisplayName: "Manage Exchange As Application"},
			{ID: "dc890d15-9560-4a4c-9b7f-a736ec74ec40", Value: "full_access_as_app", DisplayName: "Use Exchange Web Services with full access to all mailboxes"},
		},
	},
	{
		appID: LogAnalyticsAppID, name: "Log Analytics API", licence: LicenceLogAnalytics,
		names: []string{"https://api.loganalytics.io", "https://api.loganalytics.us", "https://api.loganalytics.azure.cn", LogAnalyticsAppID},
		roles: []AppRole{
			{ID: "e8f6e161-84d0-4cd7-9441-2d46ec9ec3d5", Value: "Data.Read", DisplayName: "Read Log Analytics data"},
		},
	},
	{
		appID: ARMAppID, name: "Windows Azure Service Management API",
		names: []string{"https://management.azure.com", "https://management.core.windows.net", "https://management.usgovcloudapi.net",
			"https://management.core.usgovcloudapi.net", "https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn", ARMAppID},
	},
}

// ResourceAppIDForAudience returns the first-party app whose
// servicePrincipalNames include aud (ignoring a trailing slash).
func ResourceAppIDForAudience(aud string) (string, bool) {
	aud = trimSlash(aud)
	for _, fp := range firstParties {
		for _, n := range fp.names {
			if equalFold(n, aud) {
				return fp.appID, true
			}
		}
	}
	return "", false
}

// Azure built-in role definition IDs the simulator knows.
const (
	RoleOwner                   = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleContributor             = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                  = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleUserAccessAdministrator = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleLogAnalyticsReader      = "73c42c96-874c-492b-b04d-ab87d138a893"
	RoleLogAnalyticsContributor = "92aaf0da-9dab-42b6-94a3-d43ce8d16293"
	RoleSentinelReader          = "8d289c81-5878-46d4-8554-54e1e3d8b5cb"
	RoleSentinelResponder       = "3e150937-b8fe-4cfb-8069-0eaf05ecd056"
	RoleSentinelContributor     = "ab8e14d6-4a74-4a29-9ba8-549422addade"
	RoleRBACAdministrator       = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
)

// AzureRoleNames maps built-in role IDs to names.
var AzureRoleNames = map[string]string{
	RoleOwner: "Owner", RoleContributor: "Contributor", RoleReader: "Reader",
	RoleUserAccessAdministrator: "User Access Administrator", RoleLogAnalyticsReader: "Log Analytics Reader",
	RoleLogAnalyticsContributor: "Log Analytics Contributor", RoleSentinelReader: "Microsoft Sentinel Reader",
	RoleSentinelResponder: "Microsoft Sentinel Responder", RoleSentinelContributor: "Microsoft Sentinel Contributor",
	RoleRBACAdministrator: "Role Based Access Control Administrator",
}

// Azure permissions the simulator checks.
const (
	PermRead             = "read"              // */read on the scope
	PermWriteAssignments = "assignments/write" // Microsoft.Authorization/roleAssignments/write
	PermQueryLogs        = "logs/query"        // Microsoft.OperationalInsights/workspaces/query/read
)

// roleGrants reports whether a built-in role grants perm.
func roleGrants(roleID, perm string) bool {
	switch roleID {
	case RoleOwner:
		return true
	case RoleUserAccessAdministrator, RoleRBACAdministrator:
		return true // */read plus Microsoft.Authorization/roleAssignments/*
	case RoleContributor, RoleReader, RoleLogAnalyticsReader, RoleLogAnalyticsContributor,
		RoleSentinelReader, RoleSentinelResponder, RoleSentinelContributor:
		return perm == PermRead || perm == PermQueryLogs
	}
	return false
}
