package msftsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// Group and User are directory principals, re-exported.
type (
	Group = directory.Group
	User  = directory.User
)

// DeleteApp deletes application appID in tenant (its home tenant) as an
// administrator does in the portal: the application and its service
// principal go to deleted items, and tokens for it fail with AADSTS700016.
func (a *Admin) DeleteApp(tenant, appID string) error {
	return a.sim.dir.DeleteApplication(tenant, directory.AppKey{AppID: appID}, directory.Caller{})
}

// SetRedirectURIs sets application appID's web.redirectUris (what the
// admin-consent link accepts as redirect_uri).
func (a *Admin) SetRedirectURIs(tenant, appID string, uris []string) error {
	return a.sim.dir.SetRedirectURIs(tenant, appID, uris)
}

// RevokeAzureRole removes principalID's assignments of role assigned at
// exactly role.Scope ("Remove" in the portal's Access control blade) and
// returns how many it removed (404 when none).
func (a *Admin) RevokeAzureRole(tenant string, role AzureRole, principalID string) (int, error) {
	roleID := strings.ToLower(role.Role)
	for id, name := range directory.AzureRoleNames {
		if strings.EqualFold(name, role.Role) {
			roleID = strings.ToLower(id)
		}
	}
	scope := strings.TrimSuffix(role.Scope, "/")
	ras, err := a.sim.dir.ListRoleAssignments(tenant, scope, principalID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ra := range ras {
		if !strings.EqualFold(ra.Scope, scope) || !strings.HasSuffix(strings.ToLower(ra.RoleDefinitionID), "/"+roleID) {
			continue
		}
		if _, found, err := a.sim.dir.DeleteRoleAssignment(tenant, ra.Scope, ra.Name, ""); err != nil {
			return n, err
		} else if found {
			n++
		}
	}
	if n == 0 {
		return 0, &directory.Error{Status: 404, Code: "RoleAssignmentNotFound",
			Message: fmt.Sprintf("no assignment of %s to %s at %s", role.Role, principalID, role.Scope)}
	}
	return n, nil
}

// AddGroup creates a security group; IsAssignableToRole lets it hold
// directory roles (POST /roleManagement/directory/roleAssignments).
func (a *Admin) AddGroup(tenant string, g Group) (Group, error) { return a.sim.dir.AddGroup(tenant, g) }

// AddUser creates a user (a directory role principal, listed by /users).
func (a *Admin) AddUser(tenant string, u User) (User, error) { return a.sim.dir.AddUser(tenant, u) }

// TenantFaults returns one tenant's fault scope (empty when it has none).
func (a *Admin) TenantFaults(tenant string) faults.Scope {
	return a.sim.faults.Config().Tenants[strings.ToLower(tenant)]
}

// SetTenantFaults replaces one tenant's fault scope and leaves the rest
// of the configuration (and its bookkeeping) alone; an empty scope
// removes the tenant's faults.
func (a *Admin) SetTenantFaults(tenant string, sc faults.Scope) error {
	if _, ok := a.sim.dir.LookupTenant(tenant); !ok {
		return &directory.Error{Status: 404, Code: "NotFound", Message: "tenant not found"}
	}
	a.sim.faults.SetTenant(tenant, sc)
	return nil
}

// PatchTenantFaults applies a JSON merge patch (RFC 7386) to one tenant's
// fault scope: members present replace, null removes, absent ones stay.
// Example: {"routes":{"entra.token":{"tokenErrors":{"code":530032}}}} adds
// one route's rule; {"routes":{"entra.token":null}} removes it again.
func (a *Admin) PatchTenantFaults(tenant string, patch []byte) (faults.Scope, error) {
	cur, err := json.Marshal(a.TenantFaults(tenant))
	if err != nil {
		return faults.Scope{}, err
	}
	var doc, p any
	if err := json.Unmarshal(cur, &doc); err != nil {
		return faults.Scope{}, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return faults.Scope{}, fmt.Errorf("invalid JSON body: %w", err)
	}
	merged, err := json.Marshal(mergePatch(doc, p))
	if err != nil {
		return faults.Scope{}, err
	}
	var sc faults.Scope
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return faults.Scope{}, fmt.Errorf("invalid fault scope: %w", err)
	}
	if err := a.SetTenantFaults(tenant, sc); err != nil {
		return faults.Scope{}, err
	}
	return a.TenantFaults(tenant), nil
}

// mergePatch is RFC 7386's MergePatch(target, patch).
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// TenantCounters is what one tenant's clients met: TenantCalls plus the
// early retries (requests back before Retry-After elapsed) per route.
type TenantCounters struct {
	TenantCalls
	EarlyRetries      map[string]int64 `json:"earlyRetries"`
	TotalEarlyRetries int64            `json:"totalEarlyRetries"`
}

// TenantCounters returns tenant's counters since the last ResetCounters.
func (a *Admin) TenantCounters(tenant string) TenantCounters {
	out := TenantCounters{TenantCalls: a.TenantCalls(tenant), EarlyRetries: a.sim.faults.TenantEarlyRetries(tenant)}
	for _, v := range out.EarlyRetries {
		out.TotalEarlyRetries += v
	}
	return out
}
