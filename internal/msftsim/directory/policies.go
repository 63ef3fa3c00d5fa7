package directory

import (
	"crypto/x509"
	"slices"
	"sort"
	"strings"
	"time"
)

// DefaultPolicyID is the tenant default policy's ID (tenantAppManagementPolicy).
const DefaultPolicyID = "00000000-0000-0000-0000-000000000000"

// AppPolicy is an app-specific appManagementPolicy: restrictions for the
// applications it is assigned to, which replace the tenant default for
// them ("If this resource is not configured for an application or service
// principal, the restrictions default to the settings in the
// tenantAppManagementPolicy object"; one policy per application).
type AppPolicy struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName"`
	Description string   `json:"description,omitempty"`
	Policy               // isEnabled and the restrictions
	AppliesTo   []string `json:"appliesTo,omitempty"` // application object IDs
}

// normalize fills the duration fields from their ISO 8601 forms and back.
func (p *Policy) normalize() *Error {
	for _, f := range []struct {
		iso *string
		dur *time.Duration
	}{{&p.MaxLifetime, &p.PasswordMaxLifetime}, {&p.KeyLifetime, &p.KeyMaxLifetime}} {
		if *f.iso != "" && *f.dur == 0 {
			dur, err := ParseISODuration(*f.iso)
			if err != nil {
				return errf(400, "BadRequest", "%v", err)
			}
			*f.dur = dur
		}
		if *f.dur > 0 && *f.iso == "" {
			*f.iso = FormatISODuration(*f.dur)
		}
	}
	return nil
}

// applies reports whether a restriction of p (not disabled) is enforced on
// an app created at created: the policy is enabled and the app was created
// on or after restrictForAppsCreatedAfterDateTime.
func (p Policy) applies(disabled bool, created time.Time) bool {
	return p.Enabled && !disabled && (p.RestrictForAppsCreatedAfter.IsZero() || !created.Before(p.RestrictForAppsCreatedAfter))
}

// effectivePolicy is the policy that governs a: the app-specific one
// assigned to it, else the tenant default; and that policy's ID.
func (t *Tenant) effectivePolicy(a *Application) (Policy, string) {
	for _, id := range sortedKeys(t.appPolicies) {
		if p := t.appPolicies[id]; slices.Contains(p.AppliesTo, a.ID) {
			return p.Policy, p.ID
		}
	}
	return t.policy, DefaultPolicyID
}

func sortedKeys(m map[string]*AppPolicy) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lifetimeError is Graph's refusal of a credential longer than a policy allows.
func lifetimeError(policyID string) *Error {
	msg := "Credential lifetime exceeds the max value allowed as per assigned policy '" + policyID + "'."
	return &Error{Status: 400, Code: "CredentialInvalidLifetimeAsPerAppPolicy", Message: msg,
		Details: []ErrorDetail{{Code: "InvalidKeyEndDate", Message: msg, Target: "EndDate"}}}
}

// checkKeyLifetime refuses new certificates (entries with a key) whose
// validity exceeds the asymmetricKeyLifetime restriction that governs a.
// The refusal's shape is not documented: it is addPassword's lifetime
// error (docs/msftsim.md, unconfirmed).
func (t *Tenant) checkKeyLifetime(a *Application, in []KeyCredentialInput) *Error {
	pol, id := t.effectivePolicy(a)
	if pol.KeyMaxLifetime <= 0 || !pol.applies(pol.KeyLifetimeDisabled, a.Created) {
		return nil
	}
	for _, k := range in {
		if k.Key == nil {
			continue // an existing key resent
		}
		cert, err := x509.ParseCertificate(k.Key)
		if err != nil {
			continue // buildKeys refuses it
		}
		start, end := cert.NotBefore, cert.NotAfter
		if k.Start != nil {
			start = *k.Start
		}
		if k.End != nil {
			end = *k.End
		}
		if end.Sub(start) > pol.KeyMaxLifetime {
			return lifetimeError(id)
		}
	}
	return nil
}

// AddAppPolicy creates an app-specific app-management policy (not yet
// assigned to any application) and returns it with its ID.
func (d *Directory) AddAppPolicy(tenant string, p AppPolicy) (AppPolicy, error) {
	if err := p.normalize(); err != nil {
		return AppPolicy{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return AppPolicy{}, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if p.ID == "" {
		p.ID = d.NewID()
	}
	if p.DisplayName == "" {
		p.DisplayName = "App-specific policy"
	}
	p.AppliesTo = nil
	if t.appPolicies == nil {
		t.appPolicies = map[string]*AppPolicy{}
	}
	cp := p
	t.appPolicies[strings.ToLower(p.ID)] = &cp
	return p, nil
}

// AssignAppPolicy assigns policy to the application with appObjectID
// (POST /applications/{id}/appManagementPolicies/$ref): it replaces the
// tenant default for that app; an app holds one policy, so an earlier
// assignment is removed.
func (d *Directory) AssignAppPolicy(tenant, policyID, appObjectID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	p := t.appPolicies[strings.ToLower(policyID)]
	if p == nil {
		return errf(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried reference-property objects are not present.", policyID)
	}
	if t.apps[appObjectID] == nil {
		return errf(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried reference-property objects are not present.", appObjectID)
	}
	for _, o := range t.appPolicies {
		o.AppliesTo = slices.DeleteFunc(o.AppliesTo, func(id string) bool { return id == appObjectID })
	}
	p.AppliesTo = append(p.AppliesTo, appObjectID)
	return nil
}

// AppPolicies returns the tenant's app-specific policies, by ID.
func (d *Directory) AppPolicies(tenant string) []AppPolicy {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return nil
	}
	out := make([]AppPolicy, 0, len(t.appPolicies))
	for _, id := range sortedKeys(t.appPolicies) {
		p := *t.appPolicies[id]
		p.AppliesTo = slices.Clone(p.AppliesTo)
		out = append(out, p)
	}
	return out
}

// AppliesTo returns the applications an app-specific policy is assigned to
// (visible ones), or false when there is no such policy.
func (d *Directory) AppliesTo(tenant, policyID string) ([]Application, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return nil, false
	}
	p := t.appPolicies[strings.ToLower(policyID)]
	if p == nil {
		return nil, false
	}
	now := d.clock.Now()
	out := []Application{}
	for _, id := range p.AppliesTo {
		if a := t.apps[id]; a != nil && a.vis.seen(now) {
			out = append(out, a.snapshot())
		}
	}
	return out, true
}
