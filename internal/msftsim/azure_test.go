package msftsim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

const apiVersion = "?api-version=2022-04-01"

func rgScope() string { return "/subscriptions/" + subID + "/resourceGroups/" + rg }

func roleDef(id string) string {
	return "/subscriptions/" + subID + "/providers/Microsoft.Authorization/roleDefinitions/" + id
}

func TestARMWorkspaceGet(t *testing.T) {
	e := newEnv(t)
	c := e.app()
	tok := e.mustToken(e.credFor(c), msftsim.ResourceARM)
	wsURL := e.ep.ARM + rgScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm + "?api-version=2022-10-01"
	st, _, body := e.do("GET", wsURL, tok, nil)
	if st != 403 || errCode(body) != "AuthorizationFailed" {
		t.Fatalf("without a role: %d %v", st, body)
	}
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: rgScope(), Role: "Microsoft Sentinel Reader"}, c.SPObjectID); err != nil {
		t.Fatal(err)
	}
	st, _, body = e.do("GET", wsURL, tok, nil)
	props, _ := body["properties"].(map[string]any)
	if st != 200 || props["customerId"] != e.ws.CustomerID || body["id"] != e.ws.ResourceID() {
		t.Fatalf("workspace: %d %v", st, body)
	}
	st, _, body = e.do("GET", strings.Replace(wsURL, wsNm, "nope", 1), tok, nil)
	if st != 404 || errCode(body) != "ResourceNotFound" {
		t.Fatalf("missing workspace: %d %v", st, body)
	}
	st, _, body = e.do("GET", strings.Split(wsURL, "?")[0], tok, nil)
	if st != 400 || errCode(body) != "MissingApiVersionParameter" {
		t.Fatalf("no api-version: %d %v", st, body)
	}
	graphTok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	st, hdr, body := e.do("GET", wsURL, graphTok, nil)
	if st != 401 || errCode(body) != "InvalidAuthenticationTokenAudience" || hdr.Get("x-ms-request-id") == "" {
		t.Fatalf("graph token on ARM: %d %v", st, body)
	}
	st, _, body = e.do("GET", wsURL, "", nil)
	if st != 401 || errCode(body) != "AuthenticationFailed" {
		t.Fatalf("no token: %d %v", st, body)
	}
}

func TestARMRoleAssignmentLifecycle(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles, msftsim.AzureRole{Scope: rgScope(), Role: "User Access Administrator"})
	target := e.app()
	tok := e.mustToken(e.credFor(p), msftsim.ResourceARM)
	name := "0f0f0f0f-1111-4222-8333-444444444444"
	raURL := e.ep.ARM + rgScope() + "/providers/Microsoft.Authorization/roleAssignments/" + name + apiVersion
	body := map[string]any{"properties": map[string]any{"roleDefinitionId": roleDef("8d289c81-5878-46d4-8554-54e1e3d8b5cb"),
		"principalId": target.SPObjectID, "principalType": "ServicePrincipal"}}
	st, _, got := e.do("PUT", raURL, tok, body)
	props, _ := got["properties"].(map[string]any)
	if st != 201 || got["name"] != name || props["principalId"] != target.SPObjectID || props["scope"] != rgScope() {
		t.Fatalf("PUT: %d %v", st, got)
	}
	if st, _, _ = e.do("PUT", raURL, tok, body); st != 200 {
		t.Fatalf("idempotent PUT: %d", st)
	}
	other := strings.Replace(raURL, name, "0f0f0f0f-1111-4222-8333-555555555555", 1)
	st, _, got = e.do("PUT", other, tok, body)
	if st != 409 || errCode(got) != "RoleAssignmentExists" {
		t.Fatalf("duplicate under a new name: %d %v", st, got)
	}
	if st, _, got = e.do("GET", raURL, tok, nil); st != 200 || got["id"] != rgScope()+"/providers/Microsoft.Authorization/roleAssignments/"+name {
		t.Fatalf("GET: %d %v", st, got)
	}
	listURL := e.ep.ARM + rgScope() + "/providers/Microsoft.Authorization/roleAssignments" + apiVersion + "&$filter=principalId%20eq%20'" + target.SPObjectID + "'"
	if st, _, got = e.do("GET", listURL, tok, nil); st != 200 || len(got["value"].([]any)) != 1 {
		t.Fatalf("list: %d %v", st, got)
	}
	// The Sentinel reader may now read the workspace.
	readerTok := e.mustToken(e.credFor(target), msftsim.ResourceARM)
	wsURL := e.ep.ARM + rgScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm + "?api-version=2022-10-01"
	if st, _, got = e.do("GET", wsURL, readerTok, nil); st != 200 {
		t.Fatalf("reader workspace GET: %d %v", st, got)
	}
	// ...but not assign roles.
	st, _, got = e.do("PUT", other, readerTok, body)
	if st != 403 || errCode(got) != "AuthorizationFailed" {
		t.Fatalf("reader PUT: %d %v", st, got)
	}
	if st, _, _ = e.do("DELETE", raURL, tok, nil); st != 200 {
		t.Fatalf("DELETE: %d", st)
	}
	if st, _, _ = e.do("DELETE", raURL, tok, nil); st != 204 {
		t.Fatalf("second DELETE: %d", st)
	}
	if st, _, got = e.do("GET", raURL, tok, nil); st != 404 || errCode(got) != "RoleAssignmentNotFound" {
		t.Fatalf("GET deleted: %d %v", st, got)
	}
	// A principal that does not exist.
	body["properties"].(map[string]any)["principalId"] = "deadbeef-0000-4000-8000-000000000000"
	if st, _, got = e.do("PUT", raURL, tok, body); st != 400 || errCode(got) != "PrincipalNotFound" {
		t.Fatalf("unknown principal: %d %v", st, got)
	}
}

func TestLogAnalyticsQuery(t *testing.T) {
	e := newEnv(t)
	c := e.app("log_analytics/Data.Read")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceLogAnalytics)
	qURL := e.ep.LogAnalytics + "/v1/workspaces/" + e.ws.CustomerID + "/query"
	st, _, got := e.do("POST", qURL, tok, map[string]any{"query": "print 1"})
	if st != 403 || errCode(got) != "InsufficientAccessError" {
		t.Fatalf("without RBAC: %d %v", st, got)
	}
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: rgScope(), Role: "Log Analytics Reader"}, c.SPObjectID); err != nil {
		t.Fatal(err)
	}
	st, _, got = e.do("POST", qURL, tok, map[string]any{"query": "print 1"})
	tables, _ := got["tables"].([]any)
	if st != 200 || len(tables) != 1 {
		t.Fatalf("print 1: %d %v", st, got)
	}
	tbl := tables[0].(map[string]any)
	if tbl["name"] != "PrimaryResult" || tbl["rows"].([]any)[0].([]any)[0].(float64) != 1 {
		t.Fatalf("result table %v", tbl)
	}
	if st, _, got = e.do("GET", qURL+"?query=Heartbeat%20%7C%20take%201", tok, nil); st != 200 {
		t.Fatalf("GET query: %d %v", st, got)
	}
	st, _, got = e.do("POST", qURL, tok, map[string]any{"query": "SecurityIncident | take 1"})
	if st != 200 || len(got["tables"].([]any)[0].(map[string]any)["columns"].([]any)) == 0 {
		t.Fatalf("SecurityIncident: %d %v", st, got)
	}
	st, _, got = e.do("POST", qURL, tok, map[string]any{"query": "NoSuchTable"})
	if st != 400 || errCode(got) != "BadArgumentError" {
		t.Fatalf("unknown table: %d %v", st, got)
	}
	st, _, got = e.do("POST", e.ep.LogAnalytics+"/v1/workspaces/00000000-1111-4222-8333-444444444444/query", tok, map[string]any{"query": "print 1"})
	if st != 404 || errCode(got) != "WorkspaceNotFoundError" {
		t.Fatalf("unknown workspace: %d %v", st, got)
	}
	graphTok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	if st, _, got = e.do("POST", qURL, graphTok, map[string]any{"query": "print 1"}); st != 401 {
		t.Fatalf("graph token: %d %v", st, got)
	}
}

func TestDefenderProbe(t *testing.T) {
	e := newEnv(t)
	c := e.app("defender/Machine.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceDefender)
	st, _, got := e.do("GET", e.ep.Defender+"/api/machines?$top=1", tok, nil)
	if st != 200 || got["value"] == nil {
		t.Fatalf("machines: %d %v", st, got)
	}
	st, _, got = e.do("GET", e.ep.Defender+"/api/alerts", tok, nil)
	if st != 403 || errCode(got) != "Forbidden" {
		t.Fatalf("alerts without Alert.Read.All: %d %v", st, got)
	}
	a := e.app("defender/Alert.Read.All")
	if st, _, got = e.do("GET", e.ep.Defender+"/api/alerts", e.mustToken(e.credFor(a), msftsim.ResourceDefender), nil); st != 200 {
		t.Fatalf("alerts: %d %v", st, got)
	}
}

func TestARMRoleDefinitions(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(nil, msftsim.AzureRole{Scope: rgScope(), Role: "User Access Administrator"})
	tok := e.mustToken(e.credFor(p), msftsim.ResourceARM)
	base := e.ep.ARM + rgScope() + "/providers/Microsoft.Authorization/roleDefinitions"
	st, _, got := e.do("GET", base+apiVersion+"&$filter=roleName%20eq%20'Microsoft%20Sentinel%20Reader'", tok, nil)
	vals, _ := got["value"].([]any)
	if st != 200 || len(vals) != 1 || vals[0].(map[string]any)["name"] != "8d289c81-5878-46d4-8554-54e1e3d8b5cb" {
		t.Fatalf("list by name: %d %v", st, got)
	}
	st, _, got = e.do("GET", base+"/acdd72a7-3385-48ef-bd42-f606fba81ae7"+apiVersion, tok, nil)
	if st != 200 || got["properties"].(map[string]any)["roleName"] != "Reader" {
		t.Fatalf("get Reader: %d %v", st, got)
	}
	if st, _, got = e.do("GET", base+"/00000000-0000-4000-8000-000000000000"+apiVersion, tok, nil); st != 404 || errCode(got) != "RoleDefinitionDoesNotExist" {
		t.Fatalf("unknown: %d %v", st, got)
	}
}

func TestARMAndLogAnalyticsFaultShapes(t *testing.T) {
	e := newEnv(t, func(o *msftsim.Options) { o.StrictTokenExpiry = true })
	c := e.app("log_analytics/Data.Read")
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: rgScope(), Role: "Log Analytics Reader"}, c.SPObjectID); err != nil {
		t.Fatal(err)
	}
	armTok := e.mustToken(e.credFor(c), msftsim.ResourceARM)
	laTok := e.mustToken(e.credFor(c), msftsim.ResourceLogAnalytics)
	wsURL := e.ep.ARM + rgScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm + "?api-version=2022-10-01"
	qURL := e.ep.LogAnalytics + "/v1/workspaces/" + e.ws.CustomerID + "/query"
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"arm.*":              {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 9}},
		"loganalytics.query": {ServerErrors: &faults.ServerErrors{Every: 1, Count: 1, Status: 502}},
	}}})
	st, hdr, got := e.do("GET", wsURL, armTok, nil)
	if st != 429 || hdr.Get("Retry-After") != "9" || errCode(got) != "TooManyRequests" {
		t.Fatalf("ARM 429: %d %v %v", st, hdr, got)
	}
	st, _, got = e.do("POST", qURL, laTok, map[string]any{"query": "print 1"})
	if st != 502 || errCode(got) != "ServiceUnavailable" || got["error"].(map[string]any)["correlationId"] == nil {
		t.Fatalf("LA 502: %d %v", st, got)
	}
	if st, _, _ = e.do("POST", qURL, laTok, map[string]any{"query": "print 1"}); st != 200 {
		t.Fatalf("LA after the fault: %d", st)
	}
	e.admin.AdvanceClock(2 * time.Hour)
	st, hdr, got = e.do("GET", strings.Replace(wsURL, "?", "?x=1&", 1), armTok, nil)
	if st != 401 || errCode(got) != "ExpiredAuthenticationToken" || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("expired ARM token: %d %v", st, got)
	}
}

// Microsoft Sentinel's Incidents - List, authorized by the caller's role
// actions (Microsoft.SecurityInsights/incidents/read), and the role
// assignment list's documented filters, inheritance included.
func TestARMSentinelIncidentsAndAssignmentsAtScope(t *testing.T) {
	e := newEnv(t)
	c := e.app()
	tok := e.mustToken(e.credFor(c), msftsim.ResourceARM)
	wsID := rgScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm
	incidents := e.ep.ARM + wsID + "/providers/Microsoft.SecurityInsights/incidents?api-version=2024-03-01&$top=1"
	st, _, body := e.do("GET", incidents, tok, nil)
	if st != 403 || errCode(body) != "AuthorizationFailed" || !strings.Contains(body["error"].(map[string]any)["message"].(string), "Microsoft.SecurityInsights/incidents/read") {
		t.Fatalf("without a role: %d %v", st, body)
	}
	assignments := e.ep.ARM + wsID + "/providers/Microsoft.Authorization/roleAssignments" + apiVersion + "&$filter=" +
		strings.ReplaceAll("atScope() and assignedTo('"+c.SPObjectID+"')", " ", "%20")
	if st, _, body := e.do("GET", assignments, tok, nil); st != 403 || errCode(body) != "AuthorizationFailed" {
		t.Fatalf("assignments without a role: %d %v", st, body)
	}
	// Inherited from the subscription.
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: "/subscriptions/" + subID, Role: "Microsoft Sentinel Reader"}, c.SPObjectID); err != nil {
		t.Fatal(err)
	}
	st, _, body = e.do("GET", incidents, tok, nil)
	vals, _ := body["value"].([]any)
	if st != 200 || len(vals) != 1 {
		t.Fatalf("incidents: %d %v", st, body)
	}
	inc := vals[0].(map[string]any)
	props, _ := inc["properties"].(map[string]any)
	if inc["type"] != "Microsoft.SecurityInsights/Incidents" || !strings.HasPrefix(inc["id"].(string), wsID) || props["title"] == nil || props["incidentNumber"] == nil {
		t.Fatalf("incident shape: %v", inc)
	}
	// Another principal's assignment below the scope is not listed with
	// atScope() and assignedTo().
	other := e.app()
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: wsID, Role: "Reader"}, other.SPObjectID); err != nil {
		t.Fatal(err)
	}
	st, _, body = e.do("GET", assignments, tok, nil)
	vals, _ = body["value"].([]any)
	if st != 200 || len(vals) != 1 || vals[0].(map[string]any)["properties"].(map[string]any)["scope"] != "/subscriptions/"+subID {
		t.Fatalf("atScope() and assignedTo(): %d %v", st, body)
	}
	if st, _, body := e.do("GET", strings.Replace(assignments, "atScope()%20and%20", "atScope()%20or%20", 1), tok, nil); st != 400 || errCode(body) != "UnsupportedQuery" {
		t.Fatalf("unsupported filter: %d %v", st, body)
	}
}
