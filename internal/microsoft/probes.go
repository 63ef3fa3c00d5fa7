package microsoft

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// graphProbes are the Graph probes' paths ($top=1: one object or none).
var graphProbes = map[Probe]struct{ op, path string }{
	ProbeGraphAlerts:    {"GET /security/alerts_v2", "/security/alerts_v2?$top=1"},
	ProbeGraphIncidents: {"GET /security/incidents", "/security/incidents?$top=1"},
	ProbeGraphSignIns:   {"GET /auditLogs/signIns", "/auditLogs/signIns?$top=1"},
	ProbeGraphUsers:     {"GET /users", "/users?$top=1"},
}

// graphProbe runs one Graph probe with $top=1 as a plain GET with the
// session's Graph token: a probe proves the API answers this application
// (status 2xx), so it reads the status and, on a refusal, the error body
// that mserr classifies (the same {"error":{"code","innerError"}} object
// msgraph-sdk-go's ODataError carries), without building the SDK's
// request and response models (BenchmarkSweep: the models were most of a
// check's in-process cost). The token comes first (rawToken inside call):
// its failure is classified as Entra's.
func (s *Session) graphProbe(ctx context.Context, p Probe) error {
	gp := graphProbes[p]
	if s.ep.Graph == "" {
		return notConfigured("graph", gp.op, "NoEndpoint", "no Graph endpoint in this cloud", "dzconnect has no Graph endpoint for the tenant's cloud.")
	}
	return s.probeCall(ctx, "graph", gp.op, APIGraph, strings.TrimSuffix(s.ep.Graph, "/")+gp.path)
}

// defenderMachines: GET {Defender}/api/machines?$top=1 (Machine.Read.All).
func (s *Session) defenderMachines(ctx context.Context) error {
	const op = "GET /api/machines"
	if s.ep.Defender == "" {
		return notConfigured("defender", op, "NoEndpoint", "no Defender for Endpoint API endpoint in this cloud",
			"Defender for Endpoint is not available in the tenant's cloud as configured; turn the feature off or configure its endpoint.")
	}
	return s.probeCall(ctx, "defender", op, APIDefender, strings.TrimSuffix(s.ep.Defender, "/")+"/api/machines?$top=1")
}

// cloudAppsAlerts: GET {CloudApps}/api/v1/alerts/?limit=1 with an Entra
// token for Microsoft Cloud App Security (investigation.read). The API URL
// is per tenant (Defender portal > Settings > Cloud Apps > About).
func (s *Session) cloudAppsAlerts(ctx context.Context) error {
	const op = "GET /api/v1/alerts/"
	if s.ep.CloudApps == "" {
		return notConfigured("cloudapps", op, "NoEndpoint", "no Defender for Cloud Apps API URL configured",
			"Enter the tenant's Defender for Cloud Apps API URL (Microsoft Defender portal > Settings > Cloud Apps > About > API URL).")
	}
	return s.probeCall(ctx, "cloudapps", op, APICloudApps, strings.TrimSuffix(s.ep.CloudApps, "/")+"/api/v1/alerts/?limit=1")
}

// sentinelWorkspace reads the workspace from ARM and checks that its
// customerId is the Workspace ID the integration holds.
func (s *Session) sentinelWorkspace(ctx context.Context, ws *Workspace) error {
	const op = "GET workspace"
	id, err := s.workspaceCustomerID(ctx, ws)
	if err != nil {
		return err
	}
	if ws.WorkspaceID != "" && !strings.EqualFold(id, ws.WorkspaceID) {
		return &mserr.Error{Service: "arm", Operation: op, Status: 200, Code: "WorkspaceIdMismatch", Class: mserr.ClassNotFound,
			Message: fmt.Sprintf("workspace %s has Workspace ID %s, not %s", ws.Name, id, ws.WorkspaceID),
			Remedy: fmt.Sprintf("The Workspace ID entered does not belong to workspace %q: enter %s (Log Analytics workspace > Overview > "+
				"Workspace ID), or correct the workspace name.", ws.Name, id)}
	}
	return nil
}

// workspaceCustomerID: ARM GET .../Microsoft.OperationalInsights/workspaces/{name}
// -> properties.customerId. Plain HTTP: no Azure SDK module for
// Microsoft.OperationalInsights is served to this build.
func (s *Session) workspaceCustomerID(ctx context.Context, ws *Workspace) (string, error) {
	const op = "GET workspace"
	if ws == nil || ws.SubscriptionID == "" || ws.ResourceGroup == "" || ws.Name == "" {
		return "", notConfigured("arm", op, "NoWorkspace", "subscription, resource group and workspace name are required",
			"Enter the Sentinel workspace's subscription ID, resource group and name.")
	}
	if s.ep.ARM == "" {
		return "", notConfigured("arm", op, "NoEndpoint", "no Azure Resource Manager endpoint in this cloud",
			"dzconnect has no Azure Resource Manager endpoint for the tenant's cloud.")
	}
	u := strings.TrimSuffix(s.ep.ARM, "/") + "/subscriptions/" + url.PathEscape(ws.SubscriptionID) +
		"/resourceGroups/" + url.PathEscape(ws.ResourceGroup) +
		"/providers/Microsoft.OperationalInsights/workspaces/" + url.PathEscape(ws.Name) + "?api-version=2022-10-01"
	body, err := s.call(ctx, "arm", op, APIARM, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	var w struct {
		Properties struct {
			CustomerID string `json:"customerId"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.Properties.CustomerID == "" {
		return "", &mserr.Error{Service: "arm", Operation: op, Status: 200, Code: "InvalidResponse", Class: mserr.ClassUnknown,
			Message: "the workspace answer has no properties.customerId", Remedy: "Contact Dropzone support."}
	}
	return w.Properties.CustomerID, nil
}

// logAnalyticsQuery: POST {LogAnalytics}/v1/workspaces/{customerId}/query
// {"query":"print 1"} through azquery (Data.Read and a reader role on the
// workspace).
func (s *Session) logAnalyticsQuery(ctx context.Context, ws *Workspace) error {
	const op = "POST /v1/workspaces/{id}/query"
	if ws == nil || ws.WorkspaceID == "" {
		return notConfigured("loganalytics", op, "NoWorkspace", "the Workspace ID is required",
			"Enter the Sentinel workspace's Workspace ID (Log Analytics workspace > Overview).")
	}
	_, err := s.query(ctx, ws.WorkspaceID, "print 1")
	return err
}

// maxBody caps what is read of an answer.
const maxBody = 1 << 20

// call makes one plain HTTP call with a token for api and returns the body
// of a 2xx answer; anything else is classified.
func (s *Session) call(ctx context.Context, service, op string, api API, method, u string, body []byte) ([]byte, error) {
	return s.send(ctx, service, op, api, method, u, body, true)
}

// probeCall is call for a probe, which proves access by the status alone:
// a 2xx answer's body is read to its end (bounded, so the connection's
// stream completes) and discarded, not kept in memory.
func (s *Session) probeCall(ctx context.Context, service, op string, api API, u string) error {
	_, err := s.send(ctx, service, op, api, http.MethodGet, u, nil, false)
	return err
}

func (s *Session) send(ctx context.Context, service, op string, api API, method, u string, body []byte, keep bool) ([]byte, error) {
	raw, _, err := s.bearer(ctx, api, false)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, mserr.Classify(service, op, err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Accept", "application/json")
	// Set here, on the request built here, so that the transport need not
	// copy the request to add it (withClientRequestID).
	req.Header.Set(clientRequestIDHeader, uuid.NewString())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.c.http.Do(req)
	if err != nil {
		return nil, mserr.Classify(service, op, err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok && !keep {
		if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
			return nil, mserr.Classify(service, op, err)
		}
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, mserr.Classify(service, op, err)
	}
	if !ok {
		return nil, mserr.FromResponse(service, op, resp.StatusCode, resp.Header, b)
	}
	return b, nil
}

// sentinelIncidentsAPIVersion is the stable Microsoft.SecurityInsights
// version documented for Incidents - List
// (https://learn.microsoft.com/rest/api/securityinsights/incidents/list).
const sentinelIncidentsAPIVersion = "2024-03-01"

// sentinelIncidents: ARM GET {workspace}/providers/Microsoft.SecurityInsights/incidents?api-version=2024-03-01&$top=1,
// the Sentinel API itself: it needs Microsoft.SecurityInsights/incidents/read
// on the workspace (Microsoft Sentinel Reader's Microsoft.SecurityInsights/*/read).
// A 403 AuthorizationFailed is classified ClassPermissionMissing with the
// role remedy (mserr's table).
func (s *Session) sentinelIncidents(ctx context.Context, ws *Workspace) error {
	const op = "GET Microsoft.SecurityInsights/incidents"
	u, err := s.workspaceURL(op, ws)
	if err != nil {
		return err
	}
	return s.probeCall(ctx, "arm", op, APIARM,
		u+"/providers/Microsoft.SecurityInsights/incidents?api-version="+sentinelIncidentsAPIVersion+"&$top=1")
}

// workspaceURL is the workspace's ARM URL (without api-version), or the
// classified reason there is none.
func (s *Session) workspaceURL(op string, ws *Workspace) (string, error) {
	if ws == nil || ws.SubscriptionID == "" || ws.ResourceGroup == "" || ws.Name == "" {
		return "", notConfigured("arm", op, "NoWorkspace", "subscription, resource group and workspace name are required",
			"Enter the Sentinel workspace's subscription ID, resource group and name.")
	}
	if s.ep.ARM == "" {
		return "", notConfigured("arm", op, "NoEndpoint", "no Azure Resource Manager endpoint in this cloud",
			"dzconnect has no Azure Resource Manager endpoint for the tenant's cloud.")
	}
	return strings.TrimSuffix(s.ep.ARM, "/") + ws.ResourceID(), nil
}
