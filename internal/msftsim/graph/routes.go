package graph

import "net/http"

// Roles that authorize each family of calls (any one suffices).
var (
	rolesAppRead     = []string{"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy", "Directory.Read.All", "Directory.ReadWrite.All"}
	rolesAppWrite    = []string{"Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}
	rolesAssignWrite = []string{"AppRoleAssignment.ReadWrite.All"}
	rolesAssignRead  = []string{"Application.Read.All", "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	rolesPolicyRead  = []string{"Policy.Read.All", "Policy.Read.ApplicationConfiguration", "Policy.ReadWrite.ApplicationConfiguration"}
	// rolesAppReadAlso: the Application.Read.All a call needs besides its
	// main permission (appRoleAssignedTo, appliesTo: "… and
	// Application.Read.All"), or a permission that includes it.
	rolesAppReadAlso  = []string{"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	rolesRoleMgmtRead = []string{"RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory", "Directory.Read.All", "Directory.ReadWrite.All"}
	rolesRoleMgmt     = []string{"RoleManagement.ReadWrite.Directory"}
	rolesAlerts       = []string{"SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"}
	rolesIncidents    = []string{"SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"}
	rolesLegacyAlerts = []string{"SecurityEvents.Read.All", "SecurityEvents.ReadWrite.All"}
	rolesSignIns      = []string{"AuditLog.Read.All"}
	rolesUsers        = []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	rolesOrganization = []string{"Organization.Read.All", "Directory.Read.All", "Directory.ReadWrite.All", "User.Read.All"}
)

// match finds the operation for the request, or nil.
func (s *Server) match(c *call) *route {
	n, m := len(c.segs), c.r.Method
	if n == 0 {
		return nil
	}
	keyed := c.key != nil
	seg := func(i int) string {
		if i < n {
			return c.segs[i]
		}
		return ""
	}
	hasID := keyed || n >= 2
	switch seg(0) {
	case "applications":
		switch {
		case !keyed && n == 2 && seg(1) == "$count" && m == http.MethodGet:
			return &route{"graph.applications.count", rolesAppRead, s.countApplications}
		case !keyed && n == 1 && m == http.MethodPost:
			return &route{"graph.applications.create", rolesAppWrite, s.createApplication}
		case !keyed && n == 1 && m == http.MethodGet:
			return &route{"graph.applications.list", rolesAppRead, s.listApplications}
		case hasID && c.rest() == "" && m == http.MethodGet:
			return &route{"graph.applications.get", rolesAppRead, s.getApplication}
		case hasID && c.rest() == "" && m == http.MethodPatch:
			return &route{"graph.applications.update", rolesAppWrite, s.updateApplication}
		case hasID && c.rest() == "" && m == http.MethodDelete:
			return &route{"graph.applications.delete", rolesAppWrite, s.deleteApplication}
		case hasID && c.rest() == "addPassword" && m == http.MethodPost:
			return &route{"graph.applications.addPassword", rolesAppWrite, s.addPassword}
		case hasID && c.rest() == "removePassword" && m == http.MethodPost:
			return &route{"graph.applications.removePassword", rolesAppWrite, s.removePassword}
		}
	case "servicePrincipals":
		switch {
		case !keyed && n == 2 && seg(1) == "$count" && m == http.MethodGet:
			return &route{"graph.servicePrincipals.count", rolesAppRead, s.countServicePrincipals}
		case !keyed && n == 1 && m == http.MethodPost:
			return &route{"graph.servicePrincipals.create", rolesAppWrite, s.createServicePrincipal}
		case !keyed && n == 1 && m == http.MethodGet:
			return &route{"graph.servicePrincipals.list", rolesAppRead, s.listServicePrincipals}
		case hasID && c.rest() == "" && m == http.MethodGet:
			return &route{"graph.servicePrincipals.get", rolesAppRead, s.getServicePrincipal}
		case hasID && c.rest() == "" && m == http.MethodDelete:
			return &route{"graph.servicePrincipals.delete", rolesAppWrite, s.deleteServicePrincipal}
		case hasID && c.rest() == "" && m == http.MethodPatch:
			return &route{"graph.servicePrincipals.upsert", rolesAppWrite, s.upsertServicePrincipal}
		case hasID && c.rest() == "appRoleAssignedTo" && m == http.MethodPost:
			return needsAlso(&route{"graph.appRoleAssignedTo.create", rolesAssignWrite, s.createAssignment}, rolesAppReadAlso)
		case hasID && c.rest() == "appRoleAssignedTo" && m == http.MethodGet:
			return &route{"graph.appRoleAssignedTo.list", rolesAssignRead, s.listAssignedTo}
		case hasID && c.restHead() == "appRoleAssignedTo" && c.restTail() != "" && m == http.MethodDelete:
			return &route{"graph.appRoleAssignedTo.delete", rolesAssignWrite, s.deleteAssignment}
		case hasID && c.rest() == "appRoleAssignments" && m == http.MethodGet:
			return &route{"graph.appRoleAssignments.list", rolesAssignRead, s.listAssignments}
		}
	case "policies":
		if n == 2 && seg(1) == "defaultAppManagementPolicy" && m == http.MethodGet {
			return &route{"graph.policies.defaultAppManagementPolicy", rolesPolicyRead, s.getPolicy}
		}
		if seg(1) == "appManagementPolicies" && m == http.MethodGet {
			switch {
			case n == 2:
				return &route{"graph.policies.appManagementPolicies.list", rolesPolicyRead, s.listAppPolicies}
			case n == 3:
				return &route{"graph.policies.appManagementPolicies.get", rolesPolicyRead, s.getAppPolicy}
			case n == 4 && seg(3) == "appliesTo":
				return needsAlso(&route{"graph.policies.appManagementPolicies.appliesTo", rolesPolicyRead, s.listAppliesTo}, rolesAppReadAlso)
			}
		}
	case "roleManagement":
		if n == 3 && seg(1) == "directory" && seg(2) == "roleAssignments" {
			switch m {
			case http.MethodPost:
				return &route{"graph.roleAssignments.create", rolesRoleMgmt, s.createDirectoryRole}
			case http.MethodGet:
				return &route{"graph.roleAssignments.list", rolesRoleMgmtRead, s.listDirectoryRoles}
			}
		}
		if n == 4 && seg(1) == "directory" && seg(2) == "roleAssignments" && m == http.MethodDelete {
			return &route{"graph.roleAssignments.delete", rolesRoleMgmt, s.deleteDirectoryRole}
		}
	case "directory":
		if n != 3 || seg(1) != "deletedItems" {
			return nil
		}
		switch {
		// The type cast: "microsoft.graph.application", or the namespace
		// alias "graph.application" that msgraph-sdk-go sends.
		case m == http.MethodGet && (seg(2) == "microsoft.graph.application" || seg(2) == "graph.application"):
			return &route{"graph.deletedItems.applications", rolesAppRead, s.listDeleted("application")}
		case m == http.MethodGet && (seg(2) == "microsoft.graph.servicePrincipal" || seg(2) == "graph.servicePrincipal"):
			return &route{"graph.deletedItems.servicePrincipals", rolesAppRead, s.listDeleted("servicePrincipal")}
		case m == http.MethodGet:
			return &route{"graph.deletedItems.get", rolesAppRead, s.getDeleted}
		case m == http.MethodDelete:
			return &route{"graph.deletedItems.delete", rolesAppWrite, s.purgeDeleted}
		}
	case "security":
		if n == 2 && m == http.MethodGet && seg(1) == "alerts_v2" {
			return &route{"graph.security.alerts", rolesAlerts, s.listAlerts}
		}
		if n == 2 && m == http.MethodGet && seg(1) == "alerts" {
			return &route{"graph.security.alertsLegacy", rolesLegacyAlerts, s.listLegacyAlerts}
		}
		if n == 2 && m == http.MethodGet && seg(1) == "incidents" {
			return &route{"graph.security.incidents", rolesIncidents, s.listIncidents}
		}
	case "auditLogs":
		if n == 2 && m == http.MethodGet && seg(1) == "signIns" {
			return &route{"graph.auditLogs.signIns", rolesSignIns, s.listSignIns}
		}
	case "users":
		if !keyed && n == 2 && seg(1) == "$count" && m == http.MethodGet {
			return &route{"graph.users.count", rolesUsers, s.countUsers}
		}
		if !keyed && n == 1 && m == http.MethodGet {
			return &route{"graph.users.list", rolesUsers, s.listUsers}
		}
		if hasID && c.rest() == "" && m == http.MethodGet {
			return &route{"graph.users.get", rolesUsers, s.getUser}
		}
	case "organization":
		if n == 1 && m == http.MethodGet {
			return &route{"graph.organization.list", rolesOrganization, s.listOrganization}
		}
	}
	return nil
}

// needsAlso adds a second permission requirement to rt: one of also is
// needed besides one of rt.roles (the same 403 otherwise).
func needsAlso(rt *route, also []string) *route {
	serve := rt.serve
	rt.serve = func(c *call) {
		if !c.claims.HasRole(also...) {
			c.fail(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
		serve(c)
	}
	return rt
}

// id returns the addressed object's ID: the "(id)" key or the second segment.
func (c *call) id() string {
	if c.key != nil {
		return c.key["id"]
	}
	if len(c.segs) > 1 {
		return c.segs[1]
	}
	return ""
}

// rest is the path after the addressed object, e.g. "addPassword".
func (c *call) rest() string {
	start := 2
	if c.key != nil {
		start = 1
	}
	if len(c.segs) <= start {
		return ""
	}
	out := c.segs[start]
	for _, s := range c.segs[start+1:] {
		out += "/" + s
	}
	return out
}

func (c *call) restHead() string {
	r := c.rest()
	for i := range len(r) {
		if r[i] == '/' {
			return r[:i]
		}
	}
	return r
}

func (c *call) restTail() string {
	r := c.rest()
	for i := range len(r) {
		if r[i] == '/' {
			return r[i+1:]
		}
	}
	return ""
}
