package microsoft

import (
	"context"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/azquery"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// azureClients are a session's Azure SDK clients (armauthorization/v2 for
// Azure RBAC, azquery for Log Analytics queries), built on first use with
// the cloud's endpoints and audiences, the session's credential and the
// shared retrying transport (the SDK pipelines' own retries are off).
type azureClients struct {
	once        sync.Once
	assignments *armauthorization.RoleAssignmentsClient
	definitions *armauthorization.RoleDefinitionsClient
	armErr      error

	logsOnce sync.Once
	logs     *azquery.LogsClient
	logsErr  error
}

// azcoreOptions are the options every Azure SDK client of s uses.
func (s *Session) azcoreOptions(services map[cloud.ServiceName]cloud.ServiceConfiguration) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.ep.Authority, Services: services},
		Transport: s.c.http,
		Retry:     policy.RetryOptions{MaxRetries: -1}, // retryTransport decides
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}
}

// armClients returns the session's Azure RBAC clients.
func (s *Session) armClients() (*armauthorization.RoleAssignmentsClient, *armauthorization.RoleDefinitionsClient, error) {
	s.azure.once.Do(func() {
		aud := strings.TrimSuffix(s.ep.Audiences[string(APIARM)], "/")
		if s.ep.ARM == "" || aud == "" {
			s.azure.armErr = notConfigured("arm", "arm client", "NoEndpoint", "no Azure Resource Manager endpoint or audience in this cloud",
				"dzconnect has no Azure Resource Manager endpoint for the tenant's cloud.")
			return
		}
		opts := &arm.ClientOptions{
			ClientOptions: s.azcoreOptions(map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: strings.TrimSuffix(s.ep.ARM, "/"), Audience: aud}}),
			// Registering resource providers is a write dzconnect never
			// intends: a missing registration is reported, not fixed.
			DisableRPRegistration: true,
		}
		if s.azure.assignments, s.azure.armErr = armauthorization.NewRoleAssignmentsClient("", s.cred, opts); s.azure.armErr != nil {
			return
		}
		s.azure.definitions, s.azure.armErr = armauthorization.NewRoleDefinitionsClient(s.cred, opts)
	})
	return s.azure.assignments, s.azure.definitions, s.azure.armErr
}

// logsClient returns the session's Log Analytics query client.
func (s *Session) logsClient() (*azquery.LogsClient, error) {
	s.azure.logsOnce.Do(func() {
		aud := strings.TrimSuffix(s.ep.Audiences[string(APILogAnalytics)], "/")
		if s.ep.LogAnalytics == "" || aud == "" {
			s.azure.logsErr = notConfigured("loganalytics", "logs client", "NoEndpoint", "no Log Analytics endpoint or audience in this cloud",
				"dzconnect has no Log Analytics endpoint for the tenant's cloud.")
			return
		}
		s.azure.logs, s.azure.logsErr = azquery.NewLogsClient(s.cred, &azquery.LogsClientOptions{
			ClientOptions: s.azcoreOptions(map[cloud.ServiceName]cloud.ServiceConfiguration{
				azquery.ServiceNameLogs: {Endpoint: strings.TrimSuffix(s.ep.LogAnalytics, "/") + "/v1", Audience: aud}}),
		})
	})
	return s.azure.logs, s.azure.logsErr
}

// Query runs a KQL query against the workspace with Log Analytics ID
// workspaceID (its customerId) and returns the primary table's rows. A
// query only reads: it is retried like a GET.
func (s *Session) Query(ctx context.Context, workspaceID, query string) ([][]any, error) {
	return s.query(s.operation(ctx), workspaceID, query)
}

func (s *Session) query(ctx context.Context, workspaceID, query string) ([][]any, error) {
	const op = "POST /v1/workspaces/{id}/query"
	lc, err := s.logsClient()
	if err != nil {
		return nil, classify("loganalytics", op, APILogAnalytics, err)
	}
	// The token first, outside the SDK, so that its failure is Entra's.
	if _, _, err := s.rawToken(ctx, APILogAnalytics); err != nil {
		return nil, err
	}
	resp, err := lc.QueryWorkspace(ctx, workspaceID, azquery.Body{Query: &query}, nil)
	if err != nil {
		return nil, classify("loganalytics", op, APILogAnalytics, err)
	}
	if e := resp.Error; e != nil {
		// A partial failure: the query ran, some of it did not.
		return nil, mserr.FromFacts(mserr.Facts{Service: "loganalytics", Operation: op, Status: 200, Codes: []string{e.Code}, Message: e.Error()})
	}
	if len(resp.Tables) == 0 {
		return nil, nil
	}
	rows := make([][]any, len(resp.Tables[0].Rows))
	for i, r := range resp.Tables[0].Rows {
		rows[i] = r
	}
	return rows, nil
}
