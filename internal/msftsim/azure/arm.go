package azure

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// ARM answers ARM requests; mount it under a prefix (the simulator uses /arm).
func (s *Server) ARM(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := s.Dir.NewID()
		w.Header().Set("x-ms-request-id", rid)
		w.Header().Set("x-ms-correlation-request-id", rid)
		path := strings.TrimPrefix(r.URL.Path, prefix)
		lower := strings.ToLower(path)
		const raSeg = "/providers/microsoft.authorization/roleassignments"
		const wsSeg = "/providers/microsoft.operationalinsights/workspaces/"
		const rdSeg = "/providers/microsoft.authorization/roledefinitions"
		const siSeg = "/providers/microsoft.securityinsights/incidents"
		switch {
		case strings.Contains(lower, rdSeg):
			i := strings.Index(lower, rdSeg)
			s.roleDefinitions(w, r, path[:i], strings.Trim(path[i+len(rdSeg):], "/"))
		case strings.Contains(lower, raSeg):
			i := strings.Index(lower, raSeg)
			scope, name := path[:i], strings.Trim(path[i+len(raSeg):], "/")
			s.roleAssignments(w, r, scope, name)
		case strings.Contains(lower, wsSeg) && strings.Contains(lower, siSeg):
			i := strings.Index(lower, siSeg)
			s.sentinelIncidents(w, r, path[:i], strings.Trim(path[i+len(siSeg):], "/"))
		case strings.Contains(lower, wsSeg) && r.Method == http.MethodGet:
			s.getWorkspace(w, r, path)
		default:
			observe.Annotate(r, "arm.unknown", "")
			armError(w, 404, "InvalidResourceType", "The resource type could not be found in the namespace for api version.")
		}
	})
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func armErr(w http.ResponseWriter, err error) {
	var de *directory.Error
	if errors.As(err, &de) {
		armError(w, de.Status, de.Code, de.Message)
		return
	}
	armError(w, 500, "InternalServerError", err.Error())
}

func needAPIVersion(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Query().Get("api-version") == "" {
		armError(w, 400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return false
	}
	return true
}

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request, path string) {
	cl := s.authorize(w, r, "arm.workspaces.get", directory.ARMAppID, armError)
	if cl == nil || !needAPIVersion(w, r) {
		return
	}
	p := strings.Split(strings.Trim(path, "/"), "/")
	if len(p) != 8 || !strings.EqualFold(p[0], "subscriptions") || !strings.EqualFold(p[2], "resourceGroups") {
		armError(w, 400, "InvalidResourceId", "The resource ID '"+path+"' is not valid.")
		return
	}
	sub, rg, name := p[1], p[3], p[7]
	ws, err := s.Dir.GetWorkspace(cl.Tid, sub, rg, name)
	var de *directory.Error
	if errors.As(err, &de) && (de.Code == "SubscriptionNotFound" || de.Code == "InvalidAuthenticationTokenTenant") {
		armErr(w, err)
		return
	}
	// Reader's and Log Analytics Reader's */read grant it. The Sentinel
	// roles list Microsoft.OperationalInsights/workspaces/*/read ("View log
	// analytics data"), not workspaces/read itself; Microsoft's docs do not
	// say whether that covers the workspace, and the simulator lets them
	// read it (dzconnect's check passes either way: verify/azureroles.go
	// reconcileWorkspaceProbe).
	const action = "Microsoft.OperationalInsights/workspaces/read"
	if !s.Dir.Authorized(cl.Tid, cl.Oid, path, directory.PermRead) {
		authorizationFailed(w, cl.Oid, action, path)
		return
	}
	if err != nil {
		armErr(w, err)
		return
	}
	writeJSON(w, 200, map[string]any{
		"properties": map[string]any{
			"customerId": ws.CustomerID, "provisioningState": "Succeeded", "sku": map[string]any{"name": "PerGB2018"},
			"retentionInDays": 90, "publicNetworkAccessForIngestion": "Enabled", "publicNetworkAccessForQuery": "Enabled",
			"features":         map[string]any{"enableLogAccessUsingOnlyResourcePermissions": true},
			"workspaceCapping": map[string]any{"dailyQuotaGb": -1.0},
		},
		"location": ws.Location, "tags": map[string]any{},
		"id": ws.ResourceID(), "name": ws.Name, "type": "Microsoft.OperationalInsights/workspaces",
		"etag": `"` + ws.CustomerID[:8] + `-0000-0000-0000-000000000000"`,
	})
}

func raJSON(ra directory.RoleAssignment) map[string]any {
	t := ra.Created.UTC().Format("2006-01-02T15:04:05.0000000Z")
	return map[string]any{
		"properties": map[string]any{
			"roleDefinitionId": ra.RoleDefinitionID, "principalId": ra.PrincipalID, "principalType": ra.PrincipalType,
			"scope": ra.Scope, "condition": nilIfEmpty(ra.Condition), "conditionVersion": nilIfEmpty(ra.ConditionVersion), "createdOn": t, "updatedOn": t,
			"createdBy": nilIfEmpty(ra.CreatedBy), "updatedBy": nilIfEmpty(ra.CreatedBy),
			"delegatedManagedIdentityResourceId": nil, "description": nil,
		},
		"id": ra.ID(), "type": "Microsoft.Authorization/roleAssignments", "name": ra.Name,
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) roleAssignments(w http.ResponseWriter, r *http.Request, scope, name string) {
	route := map[string]string{http.MethodPut: "arm.roleAssignments.put", http.MethodGet: "arm.roleAssignments.get",
		http.MethodDelete: "arm.roleAssignments.delete"}[r.Method]
	if name == "" && r.Method == http.MethodGet {
		route = "arm.roleAssignments.list"
	}
	if route == "" {
		observe.Annotate(r, "arm.unknown", "")
		armError(w, 405, "MethodNotAllowed", "The requested method is not allowed.")
		return
	}
	cl := s.authorize(w, r, route, directory.ARMAppID, armError)
	if cl == nil || !needAPIVersion(w, r) {
		return
	}
	switch route {
	case "arm.roleAssignments.put":
		var body struct {
			Properties struct {
				RoleDefinitionID string `json:"roleDefinitionId"`
				PrincipalID      string `json:"principalId"`
				PrincipalType    string `json:"principalType"`
				Condition        string `json:"condition"`
				ConditionVersion string `json:"conditionVersion"`
			} `json:"properties"`
		}
		if err := decode(r, &body); err != nil {
			armError(w, 400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '"+err.Error()+"'.")
			return
		}
		if body.Properties.PrincipalID == "" || body.Properties.RoleDefinitionID == "" {
			armError(w, 400, "InvalidRoleAssignmentRequest", "The role assignment request must specify properties.roleDefinitionId and properties.principalId.")
			return
		}
		ra, created, err := s.Dir.PutRoleAssignment(cl.Tid, scope, name, directory.RoleAssignmentInput{
			RoleDefinitionID: body.Properties.RoleDefinitionID, PrincipalID: body.Properties.PrincipalID, PrincipalType: body.Properties.PrincipalType,
			Condition: body.Properties.Condition, ConditionVersion: body.Properties.ConditionVersion,
		}, cl.Oid)
		if err != nil {
			armErr(w, err)
			return
		}
		status := 200
		if created {
			status = 201
		}
		writeJSON(w, status, raJSON(ra))
	case "arm.roleAssignments.get":
		if !s.Dir.Authorized(cl.Tid, cl.Oid, scope, directory.PermRead) {
			armError(w, 403, "AuthorizationFailed", "The client '"+cl.Oid+"' with object id '"+cl.Oid+"' does not have authorization to perform action "+
				"'Microsoft.Authorization/roleAssignments/read' over scope '"+scope+"' or the scope is invalid. If access was recently granted, please refresh your credentials.")
			return
		}
		ra, err := s.Dir.GetRoleAssignment(cl.Tid, scope, name)
		if err != nil {
			armErr(w, err)
			return
		}
		writeJSON(w, 200, raJSON(ra))
	case "arm.roleAssignments.list":
		principal, atScope, ok := parseAssignmentFilter(r.URL.Query().Get("$filter"))
		if !ok {
			armError(w, 400, "UnsupportedQuery", "The filter '"+r.URL.Query().Get("$filter")+"' is not supported.")
			return
		}
		if !s.Dir.Authorized(cl.Tid, cl.Oid, scope, directory.PermRead) {
			armError(w, 403, "AuthorizationFailed", "The client '"+cl.Oid+"' with object id '"+cl.Oid+"' does not have authorization to perform action "+
				"'Microsoft.Authorization/roleAssignments/read' over scope '"+scope+"' or the scope is invalid.")
			return
		}
		ras, err := s.Dir.ListRoleAssignments(cl.Tid, scope, principal)
		if err != nil {
			armErr(w, err)
			return
		}
		vals := make([]any, 0, len(ras))
		for _, ra := range ras {
			if atScope && !atOrAbove(ra.Scope, scope) {
				continue // atScope(): at or above the scope only
			}
			vals = append(vals, raJSON(ra))
		}
		writeJSON(w, 200, map[string]any{"value": vals})
	case "arm.roleAssignments.delete":
		ra, found, err := s.Dir.DeleteRoleAssignment(cl.Tid, scope, name, cl.Oid)
		if err != nil {
			armErr(w, err)
			return
		}
		if !found {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, 200, raJSON(ra))
	}
}

// parseAssignmentFilter reads a role assignment list's $filter as ARM
// documents it (Role Assignments - List For Scope, and "List Azure role
// assignments using the REST API"): "atScope()" (at or above the scope),
// "principalId eq '{id}'" (at, above or below, of that principal),
// "assignedTo('{id}')" (of that principal, directly or through a group:
// the simulator has no groups) and "atScope() and assignedTo('{id}')".
func parseAssignmentFilter(f string) (principal string, atScope, ok bool) {
	f = strings.TrimSpace(f)
	if f == "" {
		return "", false, true
	}
	if rest, found := strings.CutPrefix(f, "atScope()"); found {
		atScope = true
		f = strings.TrimSpace(rest)
		if f == "" {
			return "", true, true
		}
		if f, found = strings.CutPrefix(f, "and "); !found {
			return "", false, false
		}
		f = strings.TrimSpace(f)
	}
	if v, found := strings.CutPrefix(f, "principalId eq "); found && !atScope {
		return strings.Trim(v, "'"), false, true
	}
	if v, found := strings.CutPrefix(f, "assignedTo("); found && strings.HasSuffix(v, ")") {
		return strings.Trim(strings.TrimSuffix(v, ")"), "'"), atScope, true
	}
	return "", false, false
}

var _ = url.PathEscape
