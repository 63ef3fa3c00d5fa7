package msftsim

import (
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// Admin seeds and inspects a running simulator. Everything it does is also
// reachable over HTTP under /_sim (see docs/msftsim.md).
type Admin struct{ sim *Sim }

// TenantSpec, TenantInfo, Workspace, Policy, AppCreds, RouteCount and
// Entry are the directory and observe types, re-exported.
type (
	TenantSpec = directory.TenantSpec
	TenantInfo = directory.TenantInfo
	Workspace  = directory.Workspace
	AppCreds   = directory.AppCreds
	RouteCount = observe.RouteCount
	Entry      = observe.Entry
)

// Licence names (see directory.Licence*).
const (
	LicenceDefender     = directory.LicenceDefender
	LicenceCloudApps    = directory.LicenceCloudApps
	LicenceExchange     = directory.LicenceExchange
	LicenceLogAnalytics = directory.LicenceLogAnalytics
	LicenceEntraP1      = directory.LicenceEntraP1
)

// AddTenant creates a tenant (ID generated when empty).
func (a *Admin) AddTenant(spec TenantSpec) (TenantInfo, error) {
	t, err := a.sim.dir.AddTenant(spec)
	if err != nil {
		return TenantInfo{}, err
	}
	info, _ := a.sim.dir.LookupTenant(t.ID)
	return info, nil
}

// Tenant looks up a tenant by ID or domain.
func (a *Admin) Tenant(id string) (TenantInfo, bool) { return a.sim.dir.LookupTenant(id) }

// Tenants lists all tenants.
func (a *Admin) Tenants() []TenantInfo { return a.sim.dir.Tenants() }

// AzureRole is an Azure RBAC grant: Role is a built-in name ("Microsoft
// Sentinel Reader") or role definition GUID; Scope an ARM scope.
type AzureRole struct {
	Scope string `json:"scope"`
	Role  string `json:"role"`
	// Condition is an ABAC condition (version 2.0) on the assignment, e.g.
	// ProvisionerRBACCondition for Role Based Access Control Administrator.
	Condition string `json:"condition,omitempty"`
}

// AppRequest creates an application as a customer admin (or the
// organization owning the provisioner) would in the portal.
type AppRequest struct {
	DisplayName string `json:"displayName"`
	MultiTenant bool   `json:"multiTenant,omitempty"`
	// Roles are granted with admin consent: "Value" or "resource/Value"
	// (resource: graph, defender, cloud_apps, exchange, log_analytics or an appId).
	Roles      []string    `json:"roles,omitempty"`
	AzureRoles []AzureRole `json:"azureRoles,omitempty"`
	// RequestedRoles are the app's static application permissions
	// (requiredResourceAccess): what the admin-consent link grants.
	RequestedRoles []string `json:"requestedRoles,omitempty"`
	// RedirectURIs are the app's web.redirectUris: when set, the
	// admin-consent link refuses any other redirect_uri (AADSTS50011).
	RedirectURIs []string `json:"redirectUris,omitempty"`
	// SecretLifetime defaults to two years; NoSecret skips the secret.
	SecretLifetime string `json:"secretLifetime,omitempty"`
	NoSecret       bool   `json:"noSecret,omitempty"`
	// CertificatePEM registers a certificate credential.
	CertificatePEM string `json:"certificatePem,omitempty"`
	// ClientID and ClientSecret fix the values (demo seeds).
	ClientID     string `json:"clientId,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// CreateApp registers an app with its service principal, a secret, the
// requested admin-consented roles and Azure roles; it returns client ID
// and secret as the portal shows them.
func (a *Admin) CreateApp(tenant string, req AppRequest) (AppCreds, error) {
	spec := directory.AppSpec{DisplayName: req.DisplayName, MultiTenant: req.MultiTenant, NoSecret: req.NoSecret,
		ClientID: req.ClientID, ClientSecret: req.ClientSecret}
	if req.SecretLifetime != "" {
		d, err := parseLifetime(req.SecretLifetime)
		if err != nil {
			return AppCreds{}, err
		}
		spec.SecretLifetime = d
	}
	if req.CertificatePEM != "" {
		b, _ := pem.Decode([]byte(req.CertificatePEM))
		if b == nil {
			return AppCreds{}, errors.New("certificatePem holds no PEM block")
		}
		spec.CertDER = b.Bytes
	}
	creds, err := a.sim.dir.RegisterApp(tenant, spec)
	if err != nil {
		return AppCreds{}, err
	}
	if len(req.RequestedRoles) > 0 {
		if err := a.sim.dir.SetRequestedRoles(tenant, creds.ClientID, req.RequestedRoles); err != nil {
			return AppCreds{}, err
		}
	}
	if len(req.RedirectURIs) > 0 {
		if err := a.sim.dir.SetRedirectURIs(tenant, creds.ClientID, req.RedirectURIs); err != nil {
			return AppCreds{}, err
		}
	}
	if len(req.Roles) > 0 {
		if _, err := a.sim.dir.ConsentApp(tenant, creds.ClientID, req.Roles); err != nil {
			return AppCreds{}, err
		}
	}
	for _, r := range req.AzureRoles {
		if _, err := a.sim.dir.GrantAzureRoleWithCondition(tenant, r.Scope, r.Role, creds.SPObjectID, r.Condition); err != nil {
			return AppCreds{}, fmt.Errorf("granting %s at %s: %w", r.Role, r.Scope, err)
		}
	}
	return creds, nil
}

// parseLifetime accepts Go durations ("720h") or ISO 8601 ("P180D").
func parseLifetime(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	return directory.ParseISODuration(s)
}

// RegisterProvisioner creates the organization's multi-tenant provisioner
// app in its home tenant (created if missing) with a secret.
func (a *Admin) RegisterProvisioner(homeTenant string, req AppRequest) (AppCreds, error) {
	if _, ok := a.sim.dir.LookupTenant(homeTenant); !ok {
		if _, err := a.sim.dir.AddTenant(TenantSpec{ID: homeTenant, DisplayName: "Provisioner home"}); err != nil {
			return AppCreds{}, err
		}
	}
	req.MultiTenant = true
	if req.DisplayName == "" {
		req.DisplayName = "Dropzone AI Provisioner"
	}
	return a.CreateApp(homeTenant, req)
}

// Consent grants appID (a multi-tenant app from another tenant, or a local
// one) the roles in tenant, creating its service principal: "Grant admin
// consent". It returns the service principal object ID.
func (a *Admin) Consent(tenant, appID string, roles []string, azureRoles ...AzureRole) (string, error) {
	spID, err := a.sim.dir.ConsentApp(tenant, appID, roles)
	if err != nil {
		return "", err
	}
	for _, r := range azureRoles {
		if _, err := a.sim.dir.GrantAzureRoleWithCondition(tenant, r.Scope, r.Role, spID, r.Condition); err != nil {
			return "", fmt.Errorf("granting %s at %s: %w", r.Role, r.Scope, err)
		}
	}
	return spID, nil
}

// GrantAzureRole assigns an Azure role to a principal at scope.
func (a *Admin) GrantAzureRole(tenant string, role AzureRole, principalID string) error {
	_, err := a.sim.dir.GrantAzureRoleWithCondition(tenant, role.Scope, role.Role, principalID, role.Condition)
	return err
}

// AddWorkspace creates a Log Analytics workspace (customerId generated when empty).
func (a *Admin) AddWorkspace(tenant string, w Workspace) (Workspace, error) {
	return a.sim.dir.AddWorkspace(tenant, w)
}

// SetLicences replaces a tenant's licences: name -> "" (active) or "suspended".
func (a *Admin) SetLicences(tenant string, lic map[string]string) error {
	return a.sim.dir.SetLicences(tenant, lic)
}

// PolicySpec is the tenant's default app-management policy for secrets.
type PolicySpec struct {
	BlockPasswordAddition bool `json:"blockPasswordAddition,omitempty"`
	// PasswordMaxLifetime in ISO 8601 ("P180D") or Go form ("4320h").
	PasswordMaxLifetime string `json:"passwordMaxLifetime,omitempty"`
	// RestrictForAppsCreatedAfter limits the policy to newer apps (default: all).
	RestrictForAppsCreatedAfter time.Time `json:"restrictForAppsCreatedAfter,omitzero"`
	Disabled                    bool      `json:"disabled,omitempty"`
	// KeyMaxLifetime caps new certificates' validity (asymmetricKeyLifetime).
	KeyMaxLifetime string `json:"keyMaxLifetime,omitempty"`
	// The restrictions present with "state": "disabled" (listed, not enforced).
	PasswordAdditionDisabled bool `json:"passwordAdditionDisabled,omitempty"`
	PasswordLifetimeDisabled bool `json:"passwordLifetimeDisabled,omitempty"`
	KeyLifetimeDisabled      bool `json:"keyLifetimeDisabled,omitempty"`
}

func (p PolicySpec) policy() (directory.Policy, error) {
	pol := directory.Policy{Enabled: !p.Disabled, BlockPasswordAddition: p.BlockPasswordAddition,
		RestrictForAppsCreatedAfter: p.RestrictForAppsCreatedAfter, PasswordAdditionDisabled: p.PasswordAdditionDisabled,
		PasswordLifetimeDisabled: p.PasswordLifetimeDisabled, KeyLifetimeDisabled: p.KeyLifetimeDisabled}
	if pol.RestrictForAppsCreatedAfter.IsZero() {
		pol.RestrictForAppsCreatedAfter = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for _, f := range []struct {
		in  string
		out *time.Duration
	}{{p.PasswordMaxLifetime, &pol.PasswordMaxLifetime}, {p.KeyMaxLifetime, &pol.KeyMaxLifetime}} {
		if f.in != "" {
			d, err := parseLifetime(f.in)
			if err != nil {
				return pol, err
			}
			*f.out = d
		}
	}
	return pol, nil
}

// SetPolicy sets the tenant's default app-management policy.
func (a *Admin) SetPolicy(tenant string, p PolicySpec) error {
	pol, err := p.policy()
	if err != nil {
		return err
	}
	return a.sim.dir.SetPolicy(tenant, pol)
}

// AppPolicySpec is an app-specific app-management policy
// (GET /policies/appManagementPolicies): its restrictions replace the
// tenant default for the applications it is assigned to.
type AppPolicySpec struct {
	ID          string `json:"id,omitempty"` // default: generated
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	PolicySpec
	// AppliesTo: applications (object ID or appId) to assign it to.
	AppliesTo []string `json:"appliesTo,omitempty"`
}

// AddAppPolicy creates an app-specific policy, assigns it to the
// applications in AppliesTo, and returns its ID.
func (a *Admin) AddAppPolicy(tenant string, p AppPolicySpec) (string, error) {
	pol, err := p.policy()
	if err != nil {
		return "", err
	}
	got, err := a.sim.dir.AddAppPolicy(tenant, directory.AppPolicy{ID: p.ID, DisplayName: p.DisplayName, Description: p.Description, Policy: pol})
	if err != nil {
		return "", err
	}
	for _, app := range p.AppliesTo {
		if err := a.AssignAppPolicy(tenant, got.ID, app); err != nil {
			return got.ID, err
		}
	}
	return got.ID, nil
}

// AssignAppPolicy assigns an app-specific policy to an application (its
// object ID or appId); an application holds one policy at most.
func (a *Admin) AssignAppPolicy(tenant, policyID, app string) error {
	id := app
	if apps, err := a.Applications(tenant, func(s AppState) bool { return strings.EqualFold(s.AppID, app) }); err == nil && len(apps) == 1 {
		id = apps[0].ObjectID
	}
	return a.sim.dir.AssignAppPolicy(tenant, policyID, id)
}

// SetAppEnabled disables (AADSTS7000112) or enables appID's service principal in tenant.
func (a *Admin) SetAppEnabled(tenant, appID string, enabled bool) error {
	return a.sim.dir.SetServicePrincipalEnabled(tenant, appID, enabled)
}

// DeleteServicePrincipal deletes appID's service principal in tenant (to
// deleted items) and keeps the application: token requests of an app
// registered in tenant then fail with AADSTS7000229.
func (a *Admin) DeleteServicePrincipal(tenant, appID string) error {
	return a.sim.dir.DeleteServicePrincipal(tenant, directory.SPKey{AppID: appID}, directory.Caller{})
}

// BlockConditionalAccess makes token requests of appID ("*": all apps) in
// tenant fail with AADSTS53003.
func (a *Admin) BlockConditionalAccess(tenant, appID string, blocked bool) error {
	return a.sim.dir.SetConditionalAccessBlock(tenant, appID, blocked)
}

// SetTenantRemoved makes tenant answer as unknown everywhere (AADSTS90002
// on sign-in) or restores it.
func (a *Admin) SetTenantRemoved(tenant string, removed bool) error {
	return a.sim.dir.SetTenantRemoved(tenant, removed)
}

// DenyAdminConsent makes the admin-consent link in tenant come back
// declined (error=access_denied, AADSTS65004), or approved again.
func (a *Admin) DenyAdminConsent(tenant string, denied bool) error {
	return a.sim.dir.SetConsentDenied(tenant, denied)
}

// SetFaults replaces the fault configuration (and resets Every/Count bookkeeping).
func (a *Admin) SetFaults(c faults.Config) { a.sim.faults.Set(c) }

// Faults returns the fault configuration.
func (a *Admin) Faults() faults.Config { return a.sim.faults.Config() }

// Now returns the simulator clock.
func (a *Admin) Now() time.Time { return a.sim.clock.Now() }

// AdvanceClock moves the simulator clock forward.
func (a *Admin) AdvanceClock(d time.Duration) time.Time { return a.sim.clock.Advance(d) }

// SetClock moves the simulator clock to t.
func (a *Admin) SetClock(t time.Time) { a.sim.clock.Set(t) }

// Counters returns per-route counters.
func (a *Admin) Counters() []RouteCount { return a.sim.rec.Counts() }

// Count returns one route's counter.
func (a *Admin) Count(route string) RouteCount { return a.sim.rec.Count(route) }

// Requests returns the last limit requests (all kept when limit <= 0).
func (a *Admin) Requests(limit int) []Entry { return a.sim.rec.Log(limit) }

// PeakInFlight returns, per tenant, the most requests served at the same
// time (the concurrency a tenant saw) since the counters were reset.
func (a *Admin) PeakInFlight() map[string]int { return a.sim.rec.PeakInFlight() }

// EarlyRetries counts, per route, requests from throttled clients that came
// back before Retry-After elapsed.
func (a *Admin) EarlyRetries() map[string]int64 { return a.sim.faults.EarlyRetries() }

// EarlyRetryClients counts, per route, the distinct clients (tenant and app)
// that retried before Retry-After elapsed.
func (a *Admin) EarlyRetryClients() map[string]int { return a.sim.faults.EarlyRetryClients() }

// TotalEarlyRetries sums EarlyRetries.
func (a *Admin) TotalEarlyRetries() int64 {
	var n int64
	for _, v := range a.sim.faults.EarlyRetries() {
		n += v
	}
	return n
}

// ResetCounters clears counters, the request log, early retries and open throttle windows.
func (a *Admin) ResetCounters() {
	a.sim.rec.Reset()
	a.sim.faults.ResetCounters()
}

// TenantCalls is what the simulator served one tenant and what its
// replication lag cost there: the requests (all clients, in all and per
// route, first start and last end) since the counters were reset, and,
// since the tenant was created, the requests lag refused and the time it
// imposed (for each object refused while its duration lag ran, the time
// from the first refusal until it became visible, on the simulator clock).
type TenantCalls struct {
	observe.TenantCount
	LagRefusals int64         `json:"lagRefusals"`
	LagWait     time.Duration `json:"lagWaitNs"`
}

// TenantCalls returns tenant's counters (see TenantCalls).
func (a *Admin) TenantCalls(tenant string) TenantCalls {
	out := TenantCalls{TenantCount: a.sim.rec.Tenant(tenant)}
	out.LagRefusals, out.LagWait = a.sim.dir.LagCost(tenant)
	return out
}

// ServicePrincipalID returns the object ID of appID's service principal in tenant.
func (a *Admin) ServicePrincipalID(tenant, appID string) (string, bool) {
	return a.sim.dir.ServicePrincipalIDForApp(tenant, appID)
}
