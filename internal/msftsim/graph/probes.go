package graph

import (
	"net/http"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

// roleAssignmentJSON renders a unifiedRoleAssignment as Graph answers it,
// principalOrganizationId (the principal's tenant) and resourceScope
// included, which the v1.0 examples show though the v1.0 model (and the
// SDK) lacks them [G-unifiedroleassignment-post].
func roleAssignmentJSON(tenant string, r directory.DirectoryRoleAssignment) map[string]any {
	return map[string]any{"id": r.ID, "principalId": r.PrincipalID, "roleDefinitionId": r.RoleDefinitionID,
		"directoryScopeId": r.DirectoryScopeID, "appScopeId": nil, "condition": nil,
		"principalOrganizationId": tenant, "resourceScope": r.DirectoryScopeID}
}

func (s *Server) createDirectoryRole(c *call) {
	var body struct {
		PrincipalID      string `json:"principalId"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		DirectoryScopeID string `json:"directoryScopeId"`
	}
	if !c.readBody(&body) {
		return
	}
	r, err := s.Dir.AddDirectoryRole(c.tenant, body.PrincipalID, body.RoleDefinitionID, body.DirectoryScopeID)
	if err != nil {
		c.failErr(err)
		return
	}
	c.entity(201, "roleManagement/directory/roleAssignments/$entity", roleAssignmentJSON(c.tenant, r))
}

func (s *Server) listDirectoryRoles(c *call) {
	cl, ok := c.filterOr400("microsoft.graph.unifiedRoleAssignment", "principalId", "roleDefinitionId", "directoryScopeId")
	if !ok {
		return
	}
	rs, err := s.Dir.DirectoryRoles(c.tenant)
	if err != nil {
		c.failErr(err)
		return
	}
	var items []map[string]any
	for _, r := range rs {
		m := roleAssignmentJSON(c.tenant, r)
		if matches(cl, func(p string) string { s, _ := m[p].(string); return s }) {
			items = append(items, m)
		}
	}
	c.page("roleManagement/directory/roleAssignments", items)
}

// deleteDirectoryRole answers DELETE /roleManagement/directory/roleAssignments/{id}:
// 204, or 404 Request_ResourceNotFound.
func (s *Server) deleteDirectoryRole(c *call) {
	if err := s.Dir.RemoveDirectoryRole(c.tenant, c.segs[3]); err != nil {
		c.failErr(err)
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// unlicensed answers the 403 a product that is not licensed or onboarded
// gives: a body code distinct from the permission 403 (Authorization_RequestDenied).
func (c *call) unlicensed(licence string) bool {
	if c.s.Dir.HasLicence(c.tenant, licence) {
		return false
	}
	switch licence {
	case directory.LicenceEntraP1:
		c.fail(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
			"Neither tenant is B2C or tenant doesn't have premium license")
	default:
		c.fail(403, "Forbidden", "Tenant is not onboarded to Microsoft 365 Defender. Missing license or the tenant is not provisioned.")
	}
	return true
}

func (s *Server) listAlerts(c *call) {
	if c.unlicensed(directory.LicenceDefender) {
		return
	}
	c.page("security/alerts_v2", s.Dir.Collection(c.tenant, "alerts"))
}

// listLegacyAlerts is the legacy security API (/security/alerts), which
// SecurityEvents.Read.All grants; alerts come from the providers the tenant has.
func (s *Server) listLegacyAlerts(c *call) {
	var items []map[string]any
	if s.Dir.HasLicence(c.tenant, directory.LicenceDefender) {
		for _, a := range s.Dir.Collection(c.tenant, "alerts") {
			items = append(items, map[string]any{
				"id": a["id"], "title": a["title"], "description": a["description"], "category": a["category"],
				"severity": a["severity"], "status": a["status"], "createdDateTime": a["createdDateTime"],
				"eventDateTime": a["firstActivityDateTime"], "azureTenantId": c.tenant,
				"vendorInformation": map[string]any{"provider": "Microsoft Defender ATP", "providerVersion": nil, "subProvider": "MicrosoftDefenderATP", "vendor": "Microsoft"},
			})
		}
	}
	c.page("security/alerts", items)
}

func (s *Server) listIncidents(c *call) {
	if c.unlicensed(directory.LicenceDefender) {
		return
	}
	c.page("security/incidents", s.Dir.Collection(c.tenant, "incidents"))
}

func (s *Server) listSignIns(c *call) {
	if c.unlicensed(directory.LicenceEntraP1) {
		return
	}
	c.page("auditLogs/signIns", s.Dir.Collection(c.tenant, "signIns"))
}

func userJSON(u directory.User) map[string]any {
	return map[string]any{"businessPhones": []any{}, "displayName": u.DisplayName, "givenName": nil, "jobTitle": nil,
		"mail": nilIfEmpty(u.Mail), "mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil, "surname": nil,
		"userPrincipalName": u.UserPrincipalName, "id": u.ID}
}

var userFilterable = []string{"displayName", "userPrincipalName", "mail", "id"}

func (s *Server) listUsers(c *call) {
	q, ok := c.directoryQuery("microsoft.graph.user", userFilterable, []string{"displayName", "userPrincipalName"}, nil)
	if !ok {
		return
	}
	us := s.queryUsers(c, q)
	c.pageOf("users", len(us), func(i int) map[string]any { return userJSON(us[i]) })
}

// countUsers is GET /users/$count.
func (s *Server) countUsers(c *call) {
	if q, ok := c.directoryQuery("microsoft.graph.user", userFilterable, nil, nil); ok {
		c.countSegment(len(s.queryUsers(c, q)))
	}
}

func (s *Server) queryUsers(c *call, q dirQuery) []directory.User {
	all, _ := s.Dir.Users(c.tenant)
	var us []directory.User
	for _, u := range all {
		if matches(q.clauses, func(p string) string { return userProp(u, p) }) {
			us = append(us, u)
		}
	}
	sortItems(q, us, userProp)
	return us
}

func userProp(u directory.User, p string) string {
	switch p {
	case "displayName":
		return u.DisplayName
	case "userPrincipalName":
		return u.UserPrincipalName
	case "mail":
		return u.Mail
	}
	return u.ID
}

func (s *Server) getUser(c *call) {
	us, _ := s.Dir.Users(c.tenant)
	id := c.id()
	for _, u := range us {
		if u.ID == id || equalFoldASCII(u.UserPrincipalName, id) {
			c.entity(200, "users/$entity", userJSON(u))
			return
		}
	}
	c.fail(404, "Request_ResourceNotFound", "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
}

func (s *Server) listOrganization(c *call) {
	t, _ := s.Dir.LookupTenant(c.tenant)
	c.page("organization", []map[string]any{{
		"id": t.ID, "displayName": t.DisplayName, "tenantType": "AAD",
		"verifiedDomains": []any{map[string]any{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": true, "isInitial": true, "name": t.DefaultDomain, "type": "Managed"}},
	}})
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
