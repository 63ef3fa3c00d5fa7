package azure

import (
	"net/http"
	"slices"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

// builtinActions are the control-plane actions of the built-in roles the
// simulator knows (abridged from Azure's built-in role definitions).
var builtinActions = map[string][]string{
	directory.RoleOwner:                   {"*"},
	directory.RoleContributor:             {"*"},
	directory.RoleReader:                  {"*/read"},
	directory.RoleUserAccessAdministrator: {"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"},
	directory.RoleRBACAdministrator: {"Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete",
		"*/read", "Microsoft.Support/*"},
	directory.RoleLogAnalyticsReader:      {"*/read", "Microsoft.OperationalInsights/workspaces/analytics/query/action", "Microsoft.OperationalInsights/workspaces/search/action"},
	directory.RoleLogAnalyticsContributor: {"*/read", "Microsoft.OperationalInsights/*", "Microsoft.Resources/deployments/*"},
	directory.RoleSentinelReader:          {"Microsoft.SecurityInsights/*/read", "Microsoft.OperationalInsights/workspaces/query/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"},
	directory.RoleSentinelResponder:       {"Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/incidents/*", "Microsoft.OperationalInsights/workspaces/query/*/read"},
	directory.RoleSentinelContributor:     {"Microsoft.SecurityInsights/*", "Microsoft.OperationalInsights/workspaces/query/*/read"},
}

func roleDefJSON(sub, id string) map[string]any {
	actions := builtinActions[id]
	if actions == nil {
		actions = []string{}
	}
	return map[string]any{
		"properties": map[string]any{
			"roleName": directory.AzureRoleNames[id], "type": "BuiltInRole", "description": directory.AzureRoleNames[id] + " (simulated)",
			"assignableScopes": []string{"/"},
			"permissions":      []any{map[string]any{"actions": actions, "notActions": []string{}, "dataActions": []string{}, "notDataActions": []string{}}},
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
