package msftsim

// Routes names every simulated operation: the keys of fault rules, counters
// and the request log. Requests that match none are counted as
// "<api>.unknown" (graph.unknown, arm.unknown, ...).
var Routes = []string{
	"entra.openidConfiguration", "entra.keys", "entra.instanceDiscovery", "entra.token", "entra.adminConsent",
	"graph.applications.create", "graph.applications.list", "graph.applications.get", "graph.applications.update",
	"graph.applications.delete", "graph.applications.addPassword", "graph.applications.removePassword",
	"graph.servicePrincipals.create", "graph.servicePrincipals.list", "graph.servicePrincipals.get",
	"graph.servicePrincipals.delete", "graph.appRoleAssignedTo.create", "graph.appRoleAssignedTo.list",
	"graph.appRoleAssignedTo.delete", "graph.appRoleAssignments.list", "graph.policies.defaultAppManagementPolicy",
	"graph.policies.appManagementPolicies.list", "graph.policies.appManagementPolicies.get", "graph.policies.appManagementPolicies.appliesTo",
	"graph.servicePrincipals.upsert",
	"graph.roleAssignments.create", "graph.roleAssignments.list", "graph.roleAssignments.delete", "graph.security.alerts", "graph.security.incidents",
	"graph.security.alertsLegacy", "graph.deletedItems.applications", "graph.deletedItems.servicePrincipals",
	"graph.deletedItems.get", "graph.deletedItems.delete",
	"graph.auditLogs.signIns", "graph.users.list", "graph.users.get", "graph.organization.list",
	"graph.applications.count", "graph.servicePrincipals.count", "graph.users.count",
	"arm.workspaces.get", "arm.roleAssignments.put", "arm.roleAssignments.get", "arm.roleAssignments.delete",
	"arm.roleAssignments.list", "arm.roleDefinitions.get", "arm.roleDefinitions.list", "arm.sentinel.incidents.list", "loganalytics.query", "defender.machines.list", "defender.alerts.list",
}
