// Package directory holds the simulator's state: tenants, each its own
// Entra directory (applications, service principals, credentials, app role
// assignments, directory role assignments, app-management policy, licences,
// sample security data) plus its Azure side (workspaces, RBAC role
// assignments). One RWMutex guards it; replication lag is modelled per
// object with counters that reads consume atomically, so reads stay on the
// read lock.
package directory

import (
	"crypto/x509"
	"encoding/json"
	"sync/atomic"
	"time"
)

// Lag hides a new object for Reads reads and/or for For on the sim clock.
type Lag struct {
	Reads int
	For   time.Duration
}

// visibility implements replication lag for one object.
type visibility struct {
	until   time.Time
	reads   atomic.Int64
	ledger  *LagLedger  // the tenant's, charged with the waits this lag imposes
	charged atomic.Bool // the wait was charged (once per object)
}

// LagLedger is what replication lag cost a tenant's clients: how many
// requests it refused (hid something they asked for), and the time it
// imposed on them: for each object refused at least once while its
// duration lag (Lag.For) ran, the time from its first refusal until it
// became visible (on the simulator clock). Lag by reads imposes no time (the
// next read finds the object); it counts only as refusals.
type LagLedger struct {
	refusals atomic.Int64
	wait     atomic.Int64 // nanoseconds
}

// Refusals returns the requests replication lag refused.
func (l *LagLedger) Refusals() int64 { return l.refusals.Load() }

// Wait returns the time replication lag imposed.
func (l *LagLedger) Wait() time.Duration { return time.Duration(l.wait.Load()) }

// newVisibility returns the lag of an object of t created at now.
func (t *Tenant) newVisibility(now time.Time, l Lag) *visibility {
	v := &visibility{ledger: &t.lag}
	if l.For > 0 {
		v.until = now.Add(l.For)
	}
	v.reads.Store(int64(l.Reads))
	return v
}

// seen reports whether a read at now finds the object, consuming one hidden
// read; a refusal is charged to the tenant's ledger.
func (v *visibility) seen(now time.Time) bool {
	if v == nil {
		return true
	}
	if v.reads.Load() > 0 && v.reads.Add(-1) >= 0 {
		v.refused(now)
		return false
	}
	if now.Before(v.until) {
		v.refused(now)
		return false
	}
	return true
}

func (v *visibility) refused(now time.Time) {
	if v.ledger == nil {
		return
	}
	v.ledger.refusals.Add(1)
	if now.Before(v.until) && v.charged.CompareAndSwap(false, true) {
		v.ledger.wait.Add(int64(v.until.Sub(now)))
	}
}

// PasswordCredential is a client secret. Secret is kept in clear: this is a simulator.
type PasswordCredential struct {
	KeyID       string
	DisplayName string
	Hint        string
	Secret      string
	Start, End  time.Time
	vis         *visibility // secret lag: token requests that find it rejected
}

// KeyCredential is a certificate registered on an application.
type KeyCredential struct {
	KeyID               string
	DisplayName         string
	Type                string
	Usage               string
	CustomKeyIdentifier []byte // SHA-1 thumbprint
	Start, End          time.Time
	Cert                *x509.Certificate
}

// Application is an app registration.
type Application struct {
	ID             string
	AppID          string
	TenantID       string
	DisplayName    string
	UniqueName     string
	SignInAudience string
	Created        time.Time
	Passwords      []*PasswordCredential
	Keys           []*KeyCredential
	// Extra holds other properties a client set (requiredResourceAccess,
	// notes, tags, ...), echoed back as they were sent.
	Extra map[string]json.RawMessage
	// OwnerIDs are service principal object IDs that own the app (the
	// creator when it used Application.ReadWrite.OwnedBy).
	OwnerIDs []string
	vis      *visibility
}

// AppRole is an application permission a resource offers.
type AppRole struct {
	ID          string
	Value       string
	DisplayName string
	Description string
}

// ServicePrincipal is an application's instance in a tenant.
type ServicePrincipal struct {
	ID                     string
	AppID                  string
	TenantID               string
	DisplayName            string
	AppOwnerOrganizationID string
	AccountEnabled         bool
	AppRoles               []AppRole
	ServicePrincipalNames  []string
	ServicePrincipalType   string
	Created                time.Time
	// Licence names the product whose licence makes this first-party
	// resource present ("" for ordinary apps and always-present resources).
	Licence string
	vis     *visibility
}

// AppRoleAssignment grants AppRoleID of ResourceID to PrincipalID: admin consent.
type AppRoleAssignment struct {
	ID                   string
	AppRoleID            string
	PrincipalID          string
	PrincipalType        string
	PrincipalDisplayName string
	ResourceID           string
	ResourceDisplayName  string
	Created              time.Time
	vis                  *visibility // Graph reads
	tokenVis             *visibility // issued tokens
}

// DirectoryRoleAssignment is an Entra role (e.g. Security Reader) on a principal.
type DirectoryRoleAssignment struct {
	ID               string
	RoleDefinitionID string
	PrincipalID      string
	DirectoryScopeID string
}

// Policy is an app-management policy's application restrictions: the
// tenant's default (tenantAppManagementPolicy) or an app-specific one
// (AppPolicy). Each restriction can be present but not enforced (its
// "state": "disabled").
type Policy struct {
	Enabled bool `json:"isEnabled"`
	// BlockPasswordAddition forbids new client secrets (passwordAddition).
	BlockPasswordAddition    bool `json:"blockPasswordAddition"`
	PasswordAdditionDisabled bool `json:"passwordAdditionDisabled,omitempty"`
	// PasswordMaxLifetime caps new secrets' lifetime (passwordLifetime; 0: no cap).
	PasswordMaxLifetime time.Duration `json:"-"`
	// MaxLifetime is PasswordMaxLifetime as ISO 8601 (e.g. "P180D").
	MaxLifetime              string `json:"passwordMaxLifetime,omitempty"`
	PasswordLifetimeDisabled bool   `json:"passwordLifetimeDisabled,omitempty"`
	// KeyMaxLifetime caps new certificates' validity (asymmetricKeyLifetime; 0: no cap).
	KeyMaxLifetime time.Duration `json:"-"`
	// KeyLifetime is KeyMaxLifetime as ISO 8601.
	KeyLifetime         string `json:"keyMaxLifetime,omitempty"`
	KeyLifetimeDisabled bool   `json:"keyLifetimeDisabled,omitempty"`
	// RestrictForAppsCreatedAfter: the restrictions apply to apps created
	// on or after this instant (zero: every app).
	RestrictForAppsCreatedAfter time.Time `json:"restrictForAppsCreatedAfter"`
}

// User is a directory user.
type User struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	UserPrincipalName string `json:"userPrincipalName"`
	Mail              string `json:"mail,omitempty"`
	AccountEnabled    bool   `json:"accountEnabled"`
}

// Column is a Log Analytics result column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Table is a Log Analytics table with its rows.
type Table struct {
	Columns []Column `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Workspace is a Log Analytics workspace (Sentinel).
type Workspace struct {
	SubscriptionID string           `json:"subscriptionId"`
	ResourceGroup  string           `json:"resourceGroup"`
	Name           string           `json:"name"`
	CustomerID     string           `json:"customerId"`
	Location       string           `json:"location"`
	Tables         map[string]Table `json:"tables,omitempty"`
}

// ResourceID is the workspace's ARM ID.
func (w *Workspace) ResourceID() string {
	return "/subscriptions/" + w.SubscriptionID + "/resourceGroups/" + w.ResourceGroup +
		"/providers/Microsoft.OperationalInsights/workspaces/" + w.Name
}

// RoleAssignment is an Azure RBAC role assignment.
type RoleAssignment struct {
	Name             string
	Scope            string
	RoleDefinitionID string // full ID: /subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}
	PrincipalID      string
	PrincipalType    string
	Created          time.Time
	CreatedBy        string
	// Condition and ConditionVersion ("2.0") restrict what the assignment
	// allows (Azure ABAC; see abac.go).
	Condition        string
	ConditionVersion string
}

// ID is the role assignment's ARM ID.
func (r *RoleAssignment) ID() string {
	return r.Scope + "/providers/Microsoft.Authorization/roleAssignments/" + r.Name
}
