package graph

import (
	"strings"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

func (c *call) spKey() directory.SPKey {
	if c.key != nil {
		return directory.SPKey{ID: c.key["id"], AppID: c.key["appId"]}
	}
	return directory.SPKey{ID: c.id()}
}

// spJSON renders a service principal as Graph v1.0 does [G-sp-get] (no
// createdDateTime: the v1.0 servicePrincipal has none, only beta):
// publisherName is the display name of the tenant that owns the
// application (Microsoft's first-party apps: "Microsoft Services").
func (s *Server) spJSON(sp directory.ServicePrincipal) map[string]any {
	publisher := any(nil)
	if sp.AppOwnerOrganizationID == microsoftServicesTenant {
		publisher = "Microsoft Services"
	} else if t, ok := s.Dir.LookupTenant(sp.AppOwnerOrganizationID); ok {
		publisher = t.DisplayName
	}
	roles := make([]any, 0, len(sp.AppRoles))
	for _, r := range sp.AppRoles {
		roles = append(roles, map[string]any{"allowedMemberTypes": []string{"Application"}, "description": r.DisplayName,
			"displayName": r.DisplayName, "id": r.ID, "isEnabled": true, "origin": "Application", "value": r.Value})
	}
	return map[string]any{
		"id": sp.ID, "deletedDateTime": nil, "accountEnabled": sp.AccountEnabled, "alternativeNames": []any{},
		"appDisplayName": sp.DisplayName, "appDescription": nil, "appId": sp.AppID, "applicationTemplateId": nil,
		"appOwnerOrganizationId": sp.AppOwnerOrganizationID, "appRoleAssignmentRequired": false,
		"description": nil, "endpoints": []any{}, "disabledByMicrosoftStatus": nil,
		"displayName": sp.DisplayName, "homepage": nil, "loginUrl": nil, "logoutUrl": nil, "notes": nil,
		"notificationEmailAddresses": []any{}, "preferredSingleSignOnMode": nil, "preferredTokenSigningKeyThumbprint": nil,
		"replyUrls": []any{}, "servicePrincipalNames": sp.ServicePrincipalNames, "servicePrincipalType": sp.ServicePrincipalType,
		"signInAudience": "AzureADMultipleOrgs", "tags": []any{}, "tokenEncryptionKeyId": nil, "addIns": []any{},
		"appRoles": roles, "keyCredentials": []any{}, "oauth2PermissionScopes": []any{}, "passwordCredentials": []any{},
		"resourceSpecificApplicationPermissions": []any{}, "publisherName": publisher, "samlSingleSignOnSettings": nil,
		"info":              map[string]any{"logoUrl": nil, "marketingUrl": nil, "privacyStatementUrl": nil, "supportUrl": nil, "termsOfServiceUrl": nil},
		"verifiedPublisher": map[string]any{"displayName": nil, "verifiedPublisherId": nil, "addedDateTime": nil},
	}
}

func assignmentJSON(a directory.AppRoleAssignment) map[string]any {
	return map[string]any{
		"id": a.ID, "deletedDateTime": nil, "appRoleId": a.AppRoleID, "createdDateTime": graphTime(a.Created),
		"principalDisplayName": a.PrincipalDisplayName, "principalId": a.PrincipalID, "principalType": a.PrincipalType,
		"resourceDisplayName": a.ResourceDisplayName, "resourceId": a.ResourceID,
	}
}

func (s *Server) createServicePrincipal(c *call) {
	var body struct {
		AppID string `json:"appId"`
	}
	if !c.readBody(&body) {
		return
	}
	if body.AppID == "" {
		c.fail(400, "Request_BadRequest", "Property 'appId' is required.")
		return
	}
	sp, err := s.Dir.CreateServicePrincipal(c.tenant, body.AppID, c.caller(), c.lag("object", "graph.servicePrincipals.create"))
	if err != nil {
		c.failErr(err)
		return
	}
	c.entity(201, "servicePrincipals/$entity", s.spJSON(sp))
}

// upsertServicePrincipal is PATCH /servicePrincipals(appId='…'): with
// Prefer: create-if-missing it creates the service principal (201 with it)
// or leaves the existing one (204); without the header it is an update,
// 404 when there is none.
func (s *Server) upsertServicePrincipal(c *call) {
	var body map[string]any
	if !c.readBody(&body) {
		return
	}
	key := c.spKey()
	if key.AppID == "" || !preferCreateIfMissing(c.r.Header.Values("Prefer")) {
		if _, err := s.Dir.GetServicePrincipal(c.tenant, key); err != nil {
			c.failErr(err)
			return
		}
		c.noContent()
		return
	}
	sp, created, err := s.Dir.UpsertServicePrincipal(c.tenant, key.AppID, c.caller(), c.lag("object", "graph.servicePrincipals.upsert"))
	if err != nil {
		c.failErr(err)
		return
	}
	if created {
		c.entity(201, "servicePrincipals/$entity", s.spJSON(sp))
		return
	}
	c.noContent()
}

func (s *Server) listServicePrincipals(c *call) {
	q, ok := c.directoryQuery("microsoft.graph.servicePrincipal", []string{"appId", "displayName", "id"},
		nil, []string{"displayName", "createdDateTime"})
	if !ok {
		return
	}
	if sps, ok := s.queryServicePrincipals(c, q); ok {
		c.pageOf("servicePrincipals", len(sps), func(i int) map[string]any { return s.spJSON(sps[i]) })
	}
}

// countServicePrincipals is GET /servicePrincipals/$count.
func (s *Server) countServicePrincipals(c *call) {
	q, ok := c.directoryQuery("microsoft.graph.servicePrincipal", []string{"appId", "displayName", "id"}, nil, nil)
	if !ok {
		return
	}
	if sps, ok := s.queryServicePrincipals(c, q); ok {
		c.countSegment(len(sps))
	}
}

func (s *Server) queryServicePrincipals(c *call, q dirQuery) ([]directory.ServicePrincipal, bool) {
	sps, err := s.Dir.ListServicePrincipals(c.tenant, func(sp *directory.ServicePrincipal) bool {
		return matches(q.clauses, func(p string) string { return spProp(*sp, p) })
	})
	if err != nil {
		c.failErr(err)
		return nil, false
	}
	sortItems(q, sps, spProp)
	return sps, true
}

func spProp(sp directory.ServicePrincipal, p string) string {
	switch p {
	case "appId":
		return sp.AppID
	case "displayName":
		return sp.DisplayName
	case "createdDateTime":
		return sp.Created.UTC().Format(time.RFC3339Nano)
	}
	return sp.ID
}

func (s *Server) getServicePrincipal(c *call) {
	sp, err := s.Dir.GetServicePrincipal(c.tenant, c.spKey())
	if err != nil {
		c.failErr(err)
		return
	}
	c.entity(200, "servicePrincipals/$entity", s.spJSON(sp))
}

func (s *Server) deleteServicePrincipal(c *call) {
	if err := s.Dir.DeleteServicePrincipal(c.tenant, c.spKey(), c.caller()); err != nil {
		c.failErr(err)
		return
	}
	c.noContent()
}

// resolveSPID turns an (appId='...') key into the object ID.
func (c *call) resolveSPID() (string, bool) {
	k := c.spKey()
	if k.ID != "" {
		return k.ID, true
	}
	sp, err := c.s.Dir.GetServicePrincipal(c.tenant, k)
	if err != nil {
		c.failErr(err)
		return "", false
	}
	return sp.ID, true
}

func (s *Server) createAssignment(c *call) {
	var body struct {
		PrincipalID string `json:"principalId"`
		ResourceID  string `json:"resourceId"`
		AppRoleID   string `json:"appRoleId"`
	}
	if !c.readBody(&body) {
		return
	}
	spID, ok := c.resolveSPID()
	if !ok {
		return
	}
	if body.PrincipalID == "" || body.AppRoleID == "" || body.ResourceID == "" {
		c.fail(400, "Request_BadRequest", "Properties 'principalId', 'resourceId' and 'appRoleId' are required.")
		return
	}
	if !strings.EqualFold(body.ResourceID, spID) {
		c.fail(400, "Request_BadRequest", "The resourceId in the request body must match the service principal in the request URL.")
		return
	}
	a, err := s.Dir.AssignAppRole(c.tenant, spID, body.PrincipalID, body.AppRoleID,
		c.lag("object", "graph.appRoleAssignedTo.create"), c.lag("consent", "graph.appRoleAssignedTo.create"))
	if err != nil {
		c.failErr(err)
		return
	}
	c.entity(201, "servicePrincipals('"+spID+"')/appRoleAssignedTo/$entity", assignmentJSON(a))
}

func (s *Server) listAssignedTo(c *call) {
	s.listAssign(c, "appRoleAssignedTo", s.Dir.AppRoleAssignedTo)
}

func (s *Server) listAssignments(c *call) {
	s.listAssign(c, "appRoleAssignments", s.Dir.AppRoleAssignments)
}

func (s *Server) listAssign(c *call, nav string, list func(tenant, spID string) ([]directory.AppRoleAssignment, error)) {
	cl, ok := c.filterOr400("microsoft.graph.appRoleAssignment", "principalId", "resourceId", "appRoleId")
	if !ok {
		return
	}
	spID, ok := c.resolveSPID()
	if !ok {
		return
	}
	as, err := list(c.tenant, spID)
	if err != nil {
		c.failErr(err)
		return
	}
	items := make([]map[string]any, 0, len(as))
	for _, a := range as {
		m := assignmentJSON(a)
		if matches(cl, func(p string) string { s, _ := m[p].(string); return s }) {
			items = append(items, m)
		}
	}
	c.page("servicePrincipals('"+spID+"')/"+nav, items)
}

func (s *Server) deleteAssignment(c *call) {
	spID, ok := c.resolveSPID()
	if !ok {
		return
	}
	if err := s.Dir.DeleteAppRoleAssignment(c.tenant, spID, c.restTail()); err != nil {
		c.failErr(err)
		return
	}
	c.noContent()
}

// microsoftServicesTenant owns Microsoft's first-party applications.
const microsoftServicesTenant = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
