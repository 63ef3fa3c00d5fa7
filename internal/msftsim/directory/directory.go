package directory

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/clock"
)

// Error is a failure in the shape of the API that reported it: Status and
// Code are what Graph (or ARM) would send.
type Error struct {
	Status  int
	Code    string
	Message string
	// Details are Graph error details (code, message, target).
	Details []ErrorDetail
}

// ErrorDetail is one Graph error detail.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// Tenant is one customer directory and its Azure subscriptions.
type Tenant struct {
	ID            string
	DisplayName   string
	DefaultDomain string
	Created       time.Time
	Licences      map[string]string // licence -> "" (active) or "suspended"
	// Cloud is the Microsoft cloud the tenant lives in ("" or CloudGlobal:
	// the simulator's own). The simulator's authority is the global
	// cloud's: a tenant of another cloud refuses its token requests with
	// AADSTS900382, as login.microsoftonline.com does.
	Cloud         string
	removed       bool // answers as an unknown tenant everywhere
	consentDenied bool // admin consent is declined (AADSTS65004)

	apps          map[string]*Application // by object ID
	appsByAppID   map[string]*Application
	sps           map[string]*ServicePrincipal // by object ID
	spsByAppID    map[string]*ServicePrincipal
	assignments   map[string]*AppRoleAssignment // by ID
	dirRoles      map[string]*DirectoryRoleAssignment
	policy        Policy
	caBlocked     map[string]bool // app IDs blocked by Conditional Access ("*": all)
	users         []User
	groups        []Group // security groups (directory role principals)
	alerts        []map[string]any
	incidents     []map[string]any
	signIns       []map[string]any
	subscriptions map[string]bool
	workspaces    map[string]*Workspace // by lower-case resource ID
	roleAssign    map[string]*RoleAssignment
	deleted       map[string]*deletedItem // soft-deleted apps and service principals, by object ID
	lag           LagLedger               // what replication lag cost this tenant's clients
	appPolicies   map[string]*AppPolicy
}

// Directory is all simulated tenants.
type Directory struct {
	mu      sync.RWMutex
	clock   *clock.Clock
	tenants map[string]*Tenant // by lower-case ID and domain
	order   []*Tenant
	subs    map[string]string // subscription ID -> tenant ID
	// releaseUniqueName: a soft-deleted application frees its uniqueName
	// at once (default false: it holds it; unconfirmed either way).
	releaseUniqueName bool

	rngMu sync.Mutex
	rng   *rand.Rand
}

// New returns an empty directory using clk, generating IDs from seed.
func New(clk *clock.Clock, seed uint64) *Directory {
	return &Directory{
		clock:   clk,
		tenants: map[string]*Tenant{},
		subs:    map[string]string{},
		rng:     rand.New(rand.NewPCG(seed, seed^0xda3e39cb94b95bdb)),
	}
}

// Clock returns the directory's clock.
func (d *Directory) Clock() *clock.Clock { return d.clock }

// NewID returns a random (seeded) GUID.
func (d *Directory) NewID() string {
	d.rngMu.Lock()
	defer d.rngMu.Unlock()
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := d.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-"

// randString returns n seeded random characters from alphabet.
func (d *Directory) randString(n int, alphabet string) string {
	d.rngMu.Lock()
	defer d.rngMu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[d.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// newSecret looks like an Entra client secret: 40 characters, "8Q~" at 3.
func (d *Directory) newSecret() string {
	return d.randString(3, secretAlphabet[:62]) + "8Q~" + d.randString(34, secretAlphabet)
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsGUID reports whether s is a GUID.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

var domainRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)

// ValidTenantIdentifier reports whether s could name a tenant (GUID or DNS name).
func ValidTenantIdentifier(s string) bool { return IsGUID(s) || domainRE.MatchString(s) }

func trimSlash(s string) string { return strings.TrimRight(s, "/") }

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// CloudGlobal is the cloud of the simulator's own authority.
const CloudGlobal = "global"

// CloudUSGovGCC is US Government GCC (moderate): its tenants are in the
// global cloud's Entra ID (they sign in at login.microsoftonline.com, per
// https://learn.microsoft.com/defender-endpoint/gov#api), so the
// simulator's authority serves them like global ones.
const CloudUSGovGCC = "us-gov-gcc"

// SignsInGlobally reports whether a tenant of cloud signs in at the
// global authority (the simulator's): "", global and GCC.
func SignsInGlobally(cloud string) bool {
	return cloud == "" || strings.EqualFold(cloud, CloudGlobal) || strings.EqualFold(cloud, CloudUSGovGCC)
}

// TenantSpec describes a tenant to create.
type TenantSpec struct {
	ID          string `json:"id,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	Domain      string `json:"domain,omitempty"`
	// Cloud: "", "global" or "us-gov-gcc" (the simulator's authority, the
	// global one, serves them), or another cloud ("us-gov-gcc-high",
	// "us-gov-dod", "china"): sign-ins here then fail with AADSTS900382
	// (the tenant is in another cloud).
	Cloud      string   `json:"cloud,omitempty"`
	Licences   []string `json:"licences,omitempty"` // nil: all licences
	NoLicences bool     `json:"noLicences,omitempty"`
	// Users, Alerts, Incidents and SignIns to seed; when zero a few
	// sample objects are generated.
	Users     int `json:"users,omitempty"`
	Alerts    int `json:"alerts,omitempty"`
	Incidents int `json:"incidents,omitempty"`
	SignIns   int `json:"signIns,omitempty"`
}

// AddTenant creates a tenant with its first-party resource service
// principals (those its licences include) and sample data.
func (d *Directory) AddTenant(spec TenantSpec) (*Tenant, error) {
	if spec.ID == "" {
		spec.ID = d.NewID()
	}
	if !IsGUID(spec.ID) {
		return nil, errf(400, "BadRequest", "tenant id %q is not a GUID", spec.ID)
	}
	spec.ID = strings.ToLower(spec.ID)
	if spec.DisplayName == "" {
		spec.DisplayName = "Tenant " + spec.ID[:8]
	}
	if spec.Domain == "" {
		spec.Domain = "t" + spec.ID[:8] + ".onmicrosoft.com"
	}
	now := d.clock.Now()
	t := &Tenant{
		ID: spec.ID, DisplayName: spec.DisplayName, DefaultDomain: strings.ToLower(spec.Domain), Created: now, Cloud: spec.Cloud,
		Licences: map[string]string{}, apps: map[string]*Application{}, appsByAppID: map[string]*Application{},
		sps: map[string]*ServicePrincipal{}, spsByAppID: map[string]*ServicePrincipal{},
		assignments: map[string]*AppRoleAssignment{}, dirRoles: map[string]*DirectoryRoleAssignment{},
		caBlocked: map[string]bool{}, subscriptions: map[string]bool{}, workspaces: map[string]*Workspace{},
		roleAssign: map[string]*RoleAssignment{}, deleted: map[string]*deletedItem{},
	}
	lic := spec.Licences
	if lic == nil && !spec.NoLicences {
		lic = AllLicences
	}
	for _, l := range lic {
		t.Licences[l] = ""
	}
	d.seedSampleData(t, spec)

	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.tenants[t.ID]; dup {
		return nil, errf(409, "Conflict", "tenant %s already exists", t.ID)
	}
	if _, dup := d.tenants[t.DefaultDomain]; dup {
		return nil, errf(409, "Conflict", "domain %s already in use", t.DefaultDomain)
	}
	for _, fp := range firstParties {
		d.addFirstPartyLocked(t, fp, now)
	}
	d.tenants[t.ID] = t
	d.tenants[t.DefaultDomain] = t
	d.order = append(d.order, t)
	return t, nil
}

func (d *Directory) addFirstPartyLocked(t *Tenant, fp firstParty, now time.Time) {
	if fp.licence != "" {
		if _, ok := t.Licences[fp.licence]; !ok {
			return
		}
	}
	if _, ok := t.spsByAppID[fp.appID]; ok {
		return
	}
	sp := &ServicePrincipal{
		ID: d.NewID(), AppID: fp.appID, TenantID: t.ID, DisplayName: fp.name,
		AppOwnerOrganizationID: "f8cdef31-a31e-4b4a-93e4-5f571e91255a", AccountEnabled: true,
		AppRoles: fp.roles, ServicePrincipalNames: fp.names, ServicePrincipalType: "Application",
		Created: now, Licence: fp.licence,
	}
	t.sps[sp.ID] = sp
	t.spsByAppID[sp.AppID] = sp
}

// tenantLocked finds a tenant by ID or domain; callers hold d.mu.
func (d *Directory) tenantLocked(idOrDomain string) *Tenant {
	t := d.tenants[strings.ToLower(idOrDomain)]
	if t == nil || t.removed {
		return nil
	}
	return t
}

// SetTenantRemoved makes a tenant answer as unknown (AADSTS90002, token
// validation failures) or brings it back, keeping its state.
func (d *Directory) SetTenantRemoved(tenant string, removed bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenants[strings.ToLower(tenant)]
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	t.removed = removed
	return nil
}

// TenantExists reports whether id names a live tenant (cheap: no copy).
func (d *Directory) TenantExists(id string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.tenantLocked(id) != nil
}

// TenantInfo is a read-only summary of a tenant.
type TenantInfo struct {
	ID            string            `json:"id"`
	DisplayName   string            `json:"displayName"`
	DefaultDomain string            `json:"defaultDomain"`
	Cloud         string            `json:"cloud,omitempty"`
	Licences      map[string]string `json:"licences"`
	Policy        Policy            `json:"appManagementPolicy"`
	Workspaces    []Workspace       `json:"workspaces"`
}

// LookupTenant finds a tenant by ID or domain.
func (d *Directory) LookupTenant(idOrDomain string) (TenantInfo, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(idOrDomain)
	if t == nil {
		return TenantInfo{}, false
	}
	return t.info(), true
}

// LagCost returns what replication lag cost tenant's clients so far: the
// requests it refused and the time it imposed (see LagLedger).
func (d *Directory) LagCost(tenant string) (refusals int64, wait time.Duration) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenants[strings.ToLower(tenant)]
	if t == nil {
		return 0, 0
	}
	return t.lag.Refusals(), t.lag.Wait()
}

func (t *Tenant) info() TenantInfo {
	lic := make(map[string]string, len(t.Licences))
	for k, v := range t.Licences {
		lic[k] = v
	}
	ti := TenantInfo{ID: t.ID, DisplayName: t.DisplayName, DefaultDomain: t.DefaultDomain, Cloud: t.Cloud, Licences: lic, Policy: t.policy}
	for _, w := range t.workspaces {
		ti.Workspaces = append(ti.Workspaces, *w)
	}
	return ti
}

// Tenants lists all tenants in creation order.
func (d *Directory) Tenants() []TenantInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]TenantInfo, 0, len(d.order))
	for _, t := range d.order {
		out = append(out, t.info())
	}
	return out
}

// SetLicences replaces a tenant's licences. state per licence: "" active,
// "suspended" (token requests fail with AADSTS650052). Resource service
// principals of removed licences disappear.
func (d *Directory) SetLicences(tenant string, lic map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	t.Licences = map[string]string{}
	for k, v := range lic {
		t.Licences[k] = v
	}
	now := d.clock.Now()
	for _, fp := range firstParties {
		if fp.licence == "" {
			continue
		}
		if _, ok := t.Licences[fp.licence]; ok {
			d.addFirstPartyLocked(t, fp, now)
		} else if sp := t.spsByAppID[fp.appID]; sp != nil {
			delete(t.sps, sp.ID)
			delete(t.spsByAppID, sp.AppID)
		}
	}
	return nil
}

// HasLicence reports whether the tenant's licence is present and active.
func (d *Directory) HasLicence(tenant, licence string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return false
	}
	st, ok := t.Licences[licence]
	return ok && st == ""
}

// SetPolicy replaces the tenant's default app-management policy.
func (d *Directory) SetPolicy(tenant string, p Policy) error {
	if err := p.normalize(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	t.policy = p
	return nil
}

// Policy returns the tenant's default app-management policy.
func (d *Directory) Policy(tenant string) (Policy, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return Policy{}, false
	}
	return t.policy, true
}

// SetConditionalAccessBlock blocks (or unblocks) token issuance for appID
// in the tenant ("*" for every app): AADSTS53003.
func (d *Directory) SetConditionalAccessBlock(tenant, appID string, blocked bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if blocked {
		t.caBlocked[strings.ToLower(appID)] = true
	} else {
		delete(t.caBlocked, strings.ToLower(appID))
	}
	return nil
}

// SetServicePrincipalEnabled disables (AADSTS7000112) or re-enables the
// service principal of appID in the tenant.
func (d *Directory) SetServicePrincipalEnabled(tenant, appID string, enabled bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	sp := t.spsByAppID[strings.ToLower(appID)]
	if sp == nil {
		return errf(404, "NotFound", "no service principal for app %s in tenant %s", appID, tenant)
	}
	sp.AccountEnabled = enabled
	return nil
}
