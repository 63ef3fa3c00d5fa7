package azure

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// sentinelIncidents answers Microsoft Sentinel's Incidents - List:
//
//	GET {workspace}/providers/Microsoft.SecurityInsights/incidents?api-version=...&$top=N
//
// (https://learn.microsoft.com/rest/api/securityinsights/incidents/list).
// It is authorized by the caller's role actions: it needs
// Microsoft.SecurityInsights/incidents/read at or above the workspace, which
// the Sentinel roles grant (Microsoft.SecurityInsights/*/read), as do
// Reader's and Log Analytics Reader's */read; without it ARM answers 403
// AuthorizationFailed. The incidents come from the workspace's
// SecurityIncident table.
func (s *Server) sentinelIncidents(w http.ResponseWriter, r *http.Request, wsPath, id string) {
	if id != "" { // Incidents - Get is not simulated: dzconnect only lists
		observe.Annotate(r, "arm.unknown", "")
		armError(w, 404, "InvalidResourceType", "The resource type could not be found in the namespace for api version.")
		return
	}
	cl := s.authorize(w, r, "arm.sentinel.incidents.list", directory.ARMAppID, armError)
	if cl == nil || !needAPIVersion(w, r) {
		return
	}
	if r.Method != http.MethodGet {
		observe.Annotate(r, "arm.unknown", "")
		armError(w, 405, "MethodNotAllowed", "Only GET is simulated for Microsoft Sentinel incidents.")
		return
	}
	p := strings.Split(strings.Trim(wsPath, "/"), "/")
	if len(p) != 8 || !strings.EqualFold(p[0], "subscriptions") || !strings.EqualFold(p[2], "resourceGroups") {
		armError(w, 400, "InvalidResourceId", "The resource ID '"+wsPath+"' is not valid.")
		return
	}
	top := 50
	if v := r.URL.Query().Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			armError(w, 400, "BadRequest", "The value of $top '"+v+"' is not valid.")
			return
		}
		top = n
	}
	ws, err := s.Dir.GetWorkspace(cl.Tid, p[1], p[3], p[7])
	var de *directory.Error
	if errors.As(err, &de) && (de.Code == "SubscriptionNotFound" || de.Code == "InvalidAuthenticationTokenTenant") {
		armErr(w, err)
		return
	}
	const action = "Microsoft.SecurityInsights/incidents/read"
	scope := wsPath + "/providers/Microsoft.SecurityInsights/incidents"
	if !s.allowedAction(cl.Tid, cl.Oid, wsPath, action) {
		authorizationFailed(w, cl.Oid, action, scope)
		return
	}
	if err != nil {
		armErr(w, err)
		return
	}
	vals := []any{}
	if t, ok := ws.Tables["SecurityIncident"]; ok {
		for i, row := range t.Rows {
			if len(vals) >= top {
				break
			}
			vals = append(vals, incidentJSON(ws, t, row, i))
		}
	}
	writeJSON(w, 200, map[string]any{"value": vals})
}

// incidentJSON renders one SecurityIncident row as the documented
// Incident resource (properties abridged to what the list example shows).
func incidentJSON(ws directory.Workspace, t directory.Table, row []any, i int) map[string]any {
	col := func(name string) any {
		for j, c := range t.Columns {
			if c.Name == name && j < len(row) {
				return row[j]
			}
		}
		return nil
	}
	name := "73e01a99-5cd7-4139-a149-9f2736ff2a" + strconv.Itoa(10+i%90)
	ts, _ := col("TimeGenerated").(string)
	return map[string]any{
		"id":   ws.ResourceID() + "/providers/Microsoft.SecurityInsights/Incidents/" + name,
		"name": name, "etag": `"0300bf09-0000-0000-0000-5c37296e0000"`, "type": "Microsoft.SecurityInsights/Incidents",
		"properties": map[string]any{
			"title": col("Title"), "description": "", "severity": col("Severity"), "status": col("Status"),
			"incidentNumber": col("IncidentNumber"), "createdTimeUtc": ts, "lastModifiedTimeUtc": ts,
			"firstActivityTimeUtc": ts, "lastActivityTimeUtc": ts, "labels": []any{},
			"owner":                  map[string]any{"objectId": nil, "email": nil, "assignedTo": nil, "userPrincipalName": nil},
			"additionalData":         map[string]any{"alertsCount": 0, "bookmarksCount": 0, "commentsCount": 0, "alertProductNames": []any{}, "tactics": []any{}},
			"relatedAnalyticRuleIds": []any{},
			"incidentUrl":            "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident" + ws.ResourceID() + "/providers/Microsoft.SecurityInsights/Incidents/" + name,
		},
	}
}
