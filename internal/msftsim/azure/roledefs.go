package azure

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

// builtinActions are the control-plane actions of the built-in roles the
// simulator knows: abridged from Azure's built-in role definitions
// (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles;
// the Sentinel roles' lists are those of built-in-roles/security), keeping
// every action the simulated endpoints check.
var builtinActions = map[string][]string{
	directory.RoleOwner:                   {"*"},
	directory.RoleContributor:             {"*"},
	directory.RoleReader:                  {"*/read"},
	directory.RoleUserAccessAdministrator: {"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"},
	directory.RoleRBACAdministrator: {"Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete",
		"*/read", "Microsoft.Support/*"},
	directory.RoleLogAnalyticsReader:      {"*/read", "Microsoft.OperationalInsights/workspaces/analytics/query/action", "Microsoft.OperationalInsights/workspaces/search/action"},
	directory.RoleLogAnalyticsContributor: {"*/read", "Microsoft.OperationalInsights/*", "Microsoft.Resources/deployments/*"},
	directory.RoleSentinelReader: {"Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/dataConnectorsCheckRequirements/action",
		"Microsoft.OperationalInsights/workspaces/analytics/query/action", "Microsoft.OperationalInsights/workspaces/*/read",
		"Microsoft.OperationalInsights/workspaces/query/read", "Microsoft.OperationalInsights/workspaces/query/*/read",
		"Microsoft.Authorization/*/read", "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"},
	directory.RoleSentinelResponder: {"Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/incidents/*", "Microsoft.SecurityInsights/cases/*",
		"Microsoft.OperationalInsights/workspaces/analytics/query/action", "Microsoft.OperationalInsights/workspaces/*/read",
		"Microsoft.OperationalInsights/workspaces/query/read", "Microsoft.OperationalInsights/workspaces/query/*/read",
		"Microsoft.Authorization/*/read", "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"},
	directory.RoleSentinelContributor: {"Microsoft.SecurityInsights/*", "Microsoft.OperationalInsights/workspaces/analytics/query/action",
		"Microsoft.OperationalInsights/workspaces/*/read", "Microsoft.OperationalInsights/workspaces/query/read",
		"Microsoft.OperationalInsights/workspaces/query/*/read", "Microsoft.Authorization/*/read", "Microsoft.Resources/deployments/*",
		"Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"},
}

// builtinNotActions are the roles' notActions (abridged likewise).
var builtinNotActions = map[string][]string{
	directory.RoleSentinelReader:    {"Microsoft.SecurityInsights/ConfidentialWatchlists/*"},
	directory.RoleSentinelResponder: {"Microsoft.SecurityInsights/cases/*/Delete", "Microsoft.SecurityInsights/incidents/*/Delete", "Microsoft.SecurityInsights/ConfidentialWatchlists/*"},
	directory.RoleOwner:             {},
	directory.RoleContributor: {"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
		"Microsoft.Authorization/elevateAccess/Action"},
}

// actionMatches reports whether the role action pattern (with * wildcards)
// matches action, case-insensitively: a * stands for any characters, so
// "*/read" matches every read and "Microsoft.SecurityInsights/*/read"
// matches "Microsoft.SecurityInsights/incidents/read".
func actionMatches(pattern, action string) bool {
	p, a := strings.ToLower(pattern), strings.ToLower(action)
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == a
	}
	if !strings.HasPrefix(a, parts[0]) {
		return false
	}
	a = a[len(parts[0]):]
	for i, part := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(a, part)
		}
		j := strings.Index(a, part)
		if j < 0 {
			return false
		}
		a = a[j+len(part):]
	}
	return true
}

// roleAllows reports whether the built-in role grants action.
func roleAllows(roleID, action string) bool {
	allowed := false
	for _, p := range builtinActions[roleID] {
		if actionMatches(p, action) {
			allowed = true
			break
		}
	}
	if !allowed {
		return false
	}
	for _, p := range builtinNotActions[roleID] {
		if actionMatches(p, action) {
			return false
		}
	}
	return true
}

// allowedAction reports whether principal holds a role assignment at or
// above resource whose role grants action (Azure RBAC's check: actions
// minus notActions of any assignment that applies).
func (s *Server) allowedAction(tenant, principal, resource, action string) bool {
	ras, err := s.Dir.ListRoleAssignments(tenant, resource, principal)
	if err != nil {
		return false
	}
	for _, ra := range ras {
		if atOrAbove(ra.Scope, resource) && roleAllows(strings.ToLower(path.Base(ra.RoleDefinitionID)), action) {
			return true
		}
	}
	return false
}

// atOrAbove reports whether scope is resource or one of its parents.
func atOrAbove(scope, resource string) bool {
	s, r := strings.ToLower(strings.TrimRight(scope, "/")), strings.ToLower(strings.TrimRight(resource, "/"))
	return r == s || strings.HasPrefix(r, s+"/")
}

// authorizationFailed answers ARM's 403 for action over scope.
func authorizationFailed(w http.ResponseWriter, oid, action, scope string) {
	armError(w, 403, "AuthorizationFailed", "The client '"+oid+"' with object id '"+oid+"' does not have authorization to perform action '"+
		action+"' over scope '"+scope+"' or the scope is invalid. If access was recently granted, please refresh your credentials.")
}

func roleDefJSON(sub, id string) map[string]any {
	actions := builtinActions[id]
	if actions == nil {
		actions = []string{}
	}
	notActions := builtinNotActions[id]
	if notActions == nil {
		notActions = []string{}
	}
	return map[string]any{
		"properties": map[string]any{
			"roleName": directory.AzureRoleNames[id], "type": "BuiltInRole", "description": directory.AzureRoleNames[id] + " (simulated)",
			"assignableScopes": []string{"/"},
			"permissions":      []any{map[string]any{"actions": actions, "notActions": notActions, "dataActions": []string{}, "notDataActions": []string{}}},
			"createdOn":        "2015-02-02T21:55:09.8806423Z", "updatedOn": "2024-01-01T00:00:00.0000000Z", "createdBy": nil, "updatedBy": nil,
		},
		"id":   "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + id,
		"type": "Microsoft.Authorization/roleDefinitions",
		"name": id,
	}
}

// roleDefinitions answers GET {scope}/providers/Microsoft.Authorization/roleDefinitions[/{id}]
// [?$filter=roleName eq '...'] for the built-in roles.
func (s *Server) roleDefinitions(w http.ResponseWriter, r *http.Request, scope, id string) {
	route := "arm.roleDefinitions.list"
	if id != "" {
		route = "arm.roleDefinitions.get"
	}
	cl := s.authorize(w, r, route, directory.ARMAppID, armError)
	if cl == nil || !needAPIVersion(w, r) {
		return
	}
	if r.Method != http.MethodGet {
		armError(w, 405, "MethodNotAllowed", "Only GET is simulated for role definitions.")
		return
	}
	p := strings.Split(strings.Trim(scope, "/"), "/")
	if len(p) < 2 || !strings.EqualFold(p[0], "subscriptions") {
		armError(w, 400, "InvalidScope", "The scope '"+scope+"' is not valid.")
		return
	}
	sub := p[1]
	if !s.Dir.Authorized(cl.Tid, cl.Oid, scope, directory.PermRead) {
		armError(w, 403, "AuthorizationFailed", "The client '"+cl.Oid+"' with object id '"+cl.Oid+"' does not have authorization to perform action "+
			"'Microsoft.Authorization/roleDefinitions/read' over scope '"+scope+"' or the scope is invalid.")
		return
	}
	if id != "" {
		id = strings.ToLower(id)
		if _, ok := directory.AzureRoleNames[id]; !ok {
			armError(w, 404, "RoleDefinitionDoesNotExist", "The specified role definition with ID '"+id+"' does not exist.")
			return
		}
		writeJSON(w, 200, roleDefJSON(sub, id))
		return
	}
	name := ""
	if f := r.URL.Query().Get("$filter"); f != "" {
		v, ok := strings.CutPrefix(f, "roleName eq ")
		if !ok {
			armError(w, 400, "UnsupportedQuery", "The filter '"+f+"' is not supported.")
			return
		}
		name = strings.Trim(v, "'")
	}
	ids := make([]string, 0, len(directory.AzureRoleNames))
	for id, n := range directory.AzureRoleNames {
		if name == "" || strings.EqualFold(n, name) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	vals := make([]any, 0, len(ids))
	for _, id := range ids {
		vals = append(vals, roleDefJSON(sub, id))
	}
	writeJSON(w, 200, map[string]any{"value": vals})
}
