package microsoft

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// API names a Microsoft API a token is requested for or a call goes to.
// The values are the keys of Endpoints.Audiences.
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

// Credentials identify an application in one tenant: an integration's app,
// or the organization's provisioner. Exactly one of Secret and Certificate
// is used; the certificate wins when both are set.
type Credentials struct {
	Cloud string // cloud slug: "global", "us-gov-gcc-high", "us-gov-dod", "china"
	// Org is the dzconnect organization the credentials are used for:
	// part of the key of the throttle gate and the one-request-in-flight
	// slot, so that another organization registering the same tenant and
	// client ID (with a junk secret) cannot stall this one's calls.
	Org      string
	TenantID string // Entra tenant ID
	ClientID string
	Secret   string // never logged, never in an error
	// Certificate signs a client assertion instead of sending Secret
	// (azidentity.NewClientCertificateCredential).
	Certificate *Certificate
}

// Certificate is a certificate credential: the chain (leaf first) and the
// private key of the leaf. The key is never logged.
type Certificate struct {
	Chain []*x509.Certificate
	Key   crypto.PrivateKey
}

// ParseCertificate reads a PEM (or PKCS#12) certificate and its private key,
// as azidentity.ParseCertificates does.
func ParseCertificate(data []byte, password []byte) (*Certificate, error) {
	certs, key, err := azidentity.ParseCertificates(data, password)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate credential: %w", err)
	}
	return &Certificate{Chain: certs, Key: key}, nil
}

// String never shows the secret or the key.
func (c Credentials) String() string {
	kind := "secret"
	if c.Certificate != nil {
		kind = "certificate"
	}
	return fmt.Sprintf("{cloud=%s tenant=%s client=%s credential=%s}", c.Cloud, c.TenantID, c.ClientID, kind)
}

// GoString keeps %#v from printing the secret.
func (c Credentials) GoString() string { return "microsoft.Credentials" + c.String() }

// LogValue keeps slog from printing the secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cloud", c.Cloud), slog.String("tenant", c.TenantID), slog.String("client", c.ClientID))
}

// Token is what an access token says (decoded for diagnostics only;
// Microsoft asks clients not to rely on its contents).
type Token struct {
	Roles     []string  // app roles (permission values) in the token
	ExpiresOn time.Time // token expiry
	// PrincipalID is the token's oid claim: for an app-only token, the
	// object ID of the application's service principal in the tenant.
	PrincipalID string
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
	ProbeCloudAppsAlerts   Probe = "cloudapps-alerts"         // GET {cloudApps}/api/v1/alerts/?limit=1
	ProbeSentinelWorkspace Probe = "sentinel-workspace"       // ARM GET workspace, compares customerId
	ProbeLogAnalyticsQuery Probe = "loganalytics-query"       // POST /v1/workspaces/{id}/query (azquery)
	ProbeSentinelIncidents Probe = "sentinel-incidents"       // ARM GET {workspace}/providers/Microsoft.SecurityInsights/incidents?$top=1
)

// Workspace locates a Log Analytics (Sentinel) workspace.
type Workspace struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	WorkspaceID    string // customerId
}

// ResourceGroupScope is the ARM scope of the workspace's resource group.
func (w Workspace) ResourceGroupScope() string {
	return "/subscriptions/" + url.PathEscape(w.SubscriptionID) + "/resourceGroups/" + url.PathEscape(w.ResourceGroup)
}

// ResourceID is the workspace's ARM resource ID (and role assignment scope).
func (w Workspace) ResourceID() string {
	return w.ResourceGroupScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + url.PathEscape(w.Name)
}

// Grant is one application permission Entra records as granted (an app
// role assignment of a service principal), resolved to the role's value.
type Grant struct {
	ResourceAppID string // the resource API's application ID
	Value         string // the app role's value, e.g. "User.Read.All"
}
