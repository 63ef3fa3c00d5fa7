package verify

import (
	"context"
	"time"
)

// API names a Microsoft API a token is requested for or a probe calls.
type API string

// The APIs.
const (
	APIGraph        API = "graph"
	APIDefender     API = "defender"     // Defender for Endpoint (WindowsDefenderATP)
	APICloudApps    API = "cloudapps"    // Defender for Cloud Apps
	APIExchange     API = "exchange"     // Exchange Online
	APILogAnalytics API = "loganalytics" // Log Analytics query API
	APIARM          API = "arm"          // Azure Resource Manager
)

// Credentials identify one integration's application in one tenant.
type Credentials struct {
	Cloud    string // tenant.Cloud slug: "global", "us-gov-gcc-high", "us-gov-dod", "china"
	Org      string // the organization (keys Microsoft's throttle gate with the caller)
	TenantID string // Entra tenant ID
	ClientID string
	Secret   string // never logged, never in an error
	// Certificate, instead of Secret, is a certificate credential's Vault
	// value: PEM private key and certificate (a client assertion signs the
	// token request). Never logged, never in an error.
	Certificate string
}

// Token is what a check learns from an access token (decoded for
// diagnostics only; Microsoft asks clients not to rely on its contents).
type Token struct {
	Roles     []string  // app roles (permission values) in the token
	ExpiresOn time.Time // token expiry
}

// Probe is one data-plane call that proves an API works.
type Probe string

// The probes.
const (
	ProbeGraphAlerts       Probe = "graph-security-alerts-v2" // GET /security/alerts_v2?$top=1
	ProbeGraphIncidents    Probe = "graph-security-incidents" // GET /security/incidents?$top=1
	ProbeGraphSignIns      Probe = "graph-audit-signins"      // GET /auditLogs/signIns?$top=1
	ProbeGraphUsers        Probe = "graph-users"              // GET /users?$top=1
	ProbeDefenderMachines  Probe = "defender-machines"        // GET {defender}/api/machines?$top=1
	ProbeCloudAppsAlerts   Probe = "cloudapps-alerts"         // Defender for Cloud Apps alerts
	ProbeSentinelWorkspace Probe = "sentinel-workspace"       // ARM GET workspace, compares customerId
	ProbeLogAnalyticsQuery Probe = "loganalytics-query"       // POST /v1/workspaces/{id}/query
	// ProbeSentinelIncidents is declared in azureroles.go.
)

// Workspace locates a Sentinel workspace for its probes.
type Workspace struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	WorkspaceID    string // customerId
}

// Session is one check's conversation with Microsoft: a fresh credential
// whose tokens are never shared with another check, so a token fetched
// before a change is never reused after it.
type Session interface {
	// Token gets an access token for api. Errors are *mserr.Error.
	Token(ctx context.Context, api API) (Token, error)
	// Probe runs one data-plane call. ws is needed by the Sentinel probes.
	// Errors are *mserr.Error.
	Probe(ctx context.Context, p Probe, ws *Workspace) error
}

// Grant is one application permission Entra records as granted (an app
// role assignment of the integration's service principal).
type Grant struct {
	ResourceAppID string // the resource API's application ID
	Value         string // the app role's value, e.g. "User.Read.All"
}

// Directory reads what Entra actually granted, with a session of the
// organization's consented provisioner application.
type Directory interface {
	// AppRoleGrants lists the app roles granted to the service principal
	// of clientID in the session's tenant. Errors are *mserr.Error.
	AppRoleGrants(ctx context.Context, clientID string) ([]Grant, error)
}

// Microsoft opens sessions. Implemented by internal/microsoft.
type Microsoft interface {
	NewSession(c Credentials) (Session, error)
	// NewDirectory opens a session for the provisioner's credentials.
	NewDirectory(c Credentials) (Directory, error)
}
