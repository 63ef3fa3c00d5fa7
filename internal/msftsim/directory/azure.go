package directory

import (
	"slices"
	"strings"
	"time"
)

// defaultTables are what a new workspace can be queried for.
func defaultTables(now time.Time) map[string]Table {
	ts := now.Add(-10 * time.Minute).Format(time.RFC3339Nano)
	return map[string]Table{
		"SecurityIncident": {
			Columns: []Column{{"TimeGenerated", "datetime"}, {"IncidentNumber", "int"}, {"Title", "string"}, {"Severity", "string"}, {"Status", "string"}},
			Rows:    [][]any{{ts, 1, "Sample Sentinel incident", "Medium", "New"}},
		},
		"SecurityAlert": {
			Columns: []Column{{"TimeGenerated", "datetime"}, {"AlertName", "string"}, {"AlertSeverity", "string"}, {"SystemAlertId", "string"}},
			Rows:    [][]any{{ts, "Sample alert", "Medium", "0d1f2e3c-0000-4000-8000-000000000001"}},
		},
		"Heartbeat": {
			Columns: []Column{{"TimeGenerated", "datetime"}, {"Computer", "string"}},
			Rows:    [][]any{{ts, "vm-1"}},
		},
	}
}

// AddWorkspace creates a Log Analytics workspace (and its subscription and
// resource group, implicitly) in tenant.
func (d *Directory) AddWorkspace(tenant string, w Workspace) (Workspace, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return Workspace{}, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if w.SubscriptionID == "" || w.ResourceGroup == "" || w.Name == "" {
		return Workspace{}, errf(400, "BadRequest", "subscriptionId, resourceGroup and name are required")
	}
	w.SubscriptionID = strings.ToLower(w.SubscriptionID)
	if owner, ok := d.subs[w.SubscriptionID]; ok && owner != t.ID {
		return Workspace{}, errf(409, "Conflict", "subscription %s belongs to tenant %s", w.SubscriptionID, owner)
	}
	if w.CustomerID == "" {
		w.CustomerID = d.NewID()
	}
	if w.Location == "" {
		w.Location = "eastus"
	}
	if w.Tables == nil {
		w.Tables = defaultTables(d.clock.Now())
	}
	d.subs[w.SubscriptionID] = t.ID
	t.subscriptions[w.SubscriptionID] = true
	t.workspaces[strings.ToLower(w.ResourceID())] = &w
	return w, nil
}

// checkScope validates an ARM scope for the caller's tenant: the
// subscription must exist there and a named resource group must exist.
func (d *Directory) checkScope(t *Tenant, scope string) *Error {
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	if len(parts) < 2 || !strings.EqualFold(parts[0], "subscriptions") {
		return errf(400, "InvalidScope", "The scope '%s' is not valid.", scope)
	}
	sub := strings.ToLower(parts[1])
	owner, ok := d.subs[sub]
	if !ok {
		return errf(404, "SubscriptionNotFound", "The subscription '%s' could not be found.", parts[1])
	}
	if owner != t.ID {
		return errf(401, "InvalidAuthenticationTokenTenant",
			"The access token is from the wrong issuer 'https://sts.windows.net/%s/'. It must match the tenant 'https://sts.windows.net/%s/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/%s' to get the token.",
			t.ID, owner, owner)
	}
	if len(parts) >= 4 && strings.EqualFold(parts[2], "resourceGroups") {
		prefix := strings.ToLower("/subscriptions/" + parts[1] + "/resourceGroups/" + parts[3] + "/")
		found := false
		for id := range t.workspaces {
			if strings.HasPrefix(id, prefix) {
				found = true
			}
		}
		if !found {
			return errf(404, "ResourceGroupNotFound", "Resource group '%s' could not be found.", parts[3])
		}
	}
	return nil
}

// GetWorkspace reads a workspace as ARM would for a caller in tenant.
func (d *Directory) GetWorkspace(tenant, sub, rg, name string) (Workspace, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return Workspace{}, errf(401, "InvalidAuthenticationToken", "The access token is invalid.")
	}
	if err := d.checkScope(t, "/subscriptions/"+sub+"/resourceGroups/"+rg); err != nil {
		return Workspace{}, err
	}
	w := t.workspaces[strings.ToLower("/subscriptions/"+sub+"/resourceGroups/"+rg+"/providers/Microsoft.OperationalInsights/workspaces/"+name)]
	if w == nil {
		return Workspace{}, errf(404, "ResourceNotFound",
			"The Resource 'Microsoft.OperationalInsights/workspaces/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", name, rg)
	}
	return *w, nil
}

// WorkspaceByCustomerID finds a workspace by its Log Analytics workspace ID.
func (d *Directory) WorkspaceByCustomerID(customerID string) (string, Workspace, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, t := range d.order {
		for _, w := range t.workspaces {
			if strings.EqualFold(w.CustomerID, customerID) {
				return t.ID, *w, true
			}
		}
	}
	return "", Workspace{}, false
}

func roleGUID(roleDefinitionID string) string {
	return strings.ToLower(roleDefinitionID[strings.LastIndex(roleDefinitionID, "/")+1:])
}

func scopeCovers(scope, resource string) bool {
	s, r := strings.ToLower(strings.TrimRight(scope, "/")), strings.ToLower(strings.TrimRight(resource, "/"))
	return r == s || strings.HasPrefix(r, s+"/")
}

// Authorized reports whether principalID holds perm on resource in tenant.
func (d *Directory) Authorized(tenant, principalID, resource, perm string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	return t != nil && authorizedLocked(t, principalID, resource, perm)
}

func authorizedLocked(t *Tenant, principalID, resource, perm string) bool {
	for _, ra := range t.roleAssign {
		if strings.EqualFold(ra.PrincipalID, principalID) && scopeCovers(ra.Scope, resource) && roleGrants(roleGUID(ra.RoleDefinitionID), perm) {
			return true
		}
	}
	return false
}

func authorizationFailed(caller, action, scope string) *Error {
	return errf(403, "AuthorizationFailed",
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		caller, caller, action, scope)
}

// RoleAssignmentInput is the body of an ARM role assignment PUT.
type RoleAssignmentInput struct {
	RoleDefinitionID string
	PrincipalID      string
	PrincipalType    string
	Condition        string
	ConditionVersion string
}

// PutRoleAssignment creates an Azure role assignment named name at scope.
// caller ("" for the admin API) must hold roleAssignments/write there.
func (d *Directory) PutRoleAssignment(tenant, scope, name string, in RoleAssignmentInput, caller string) (RoleAssignment, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return RoleAssignment{}, false, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if !IsGUID(name) {
		return RoleAssignment{}, false, errf(400, "InvalidRoleAssignmentId",
			"The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name)
	}
	if err := d.checkScope(t, scope); err != nil {
		return RoleAssignment{}, false, err
	}
	role := roleGUID(in.RoleDefinitionID)
	if caller != "" {
		const action = "Microsoft.Authorization/roleAssignments/write"
		ok, conditional := mayManageAssignments(t, caller, scope, PermWriteAssignments, abacAttrs{action: action, requestRole: role, requestPrincipalType: in.PrincipalType})
		if !ok && conditional {
			return RoleAssignment{}, false, abacFailed(caller, action, scope+"/providers/Microsoft.Authorization/roleAssignments/"+name)
		}
		if !ok {
			return RoleAssignment{}, false, authorizationFailed(caller, action, scope+"/providers/Microsoft.Authorization/roleAssignments/"+name)
		}
	}
	if in.Condition != "" && in.ConditionVersion != "2.0" {
		return RoleAssignment{}, false, errf(400, "InvalidConditionVersion", "The condition version '%s' is not valid. Only '2.0' is supported.", in.ConditionVersion)
	}
	if _, ok := AzureRoleNames[role]; !ok || !strings.Contains(strings.ToLower(in.RoleDefinitionID), "/providers/microsoft.authorization/roledefinitions/") {
		return RoleAssignment{}, false, errf(400, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", role)
	}
	now := d.clock.Now()
	sp := t.sps[strings.ToLower(in.PrincipalID)]
	isUser := slices.ContainsFunc(t.users, func(u User) bool { return strings.EqualFold(u.ID, in.PrincipalID) })
	visible := isUser || (sp != nil && (in.PrincipalType != "" || sp.vis.seen(now)))
	if !visible {
		return RoleAssignment{}, false, errf(400, "PrincipalNotFound",
			"Principal %s does not exist in the directory %s. Check that you have the correct principal ID. If you are creating this "+
				"principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set "+
				"the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
			strings.ReplaceAll(in.PrincipalID, "-", ""), t.ID)
	}
	id := strings.ToLower(scope + "/providers/Microsoft.Authorization/roleAssignments/" + name)
	if ex := t.roleAssign[id]; ex != nil {
		if roleGUID(ex.RoleDefinitionID) == role && strings.EqualFold(ex.PrincipalID, in.PrincipalID) {
			return *ex, false, nil
		}
		return RoleAssignment{}, false, errf(400, "RoleAssignmentUpdateNotPermitted",
			"Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	}
	for _, ex := range t.roleAssign {
		if strings.EqualFold(ex.Scope, scope) && roleGUID(ex.RoleDefinitionID) == role && strings.EqualFold(ex.PrincipalID, in.PrincipalID) {
			return RoleAssignment{}, false, errf(409, "RoleAssignmentExists",
				"The role assignment already exists. The ID of the existing role assignment is %s.", strings.ReplaceAll(ex.Name, "-", ""))
		}
	}
	pt := in.PrincipalType
	if pt == "" {
		pt = "ServicePrincipal"
		if isUser {
			pt = "User"
		}
	}
	ra := &RoleAssignment{Name: strings.ToLower(name), Scope: scope, RoleDefinitionID: in.RoleDefinitionID,
		PrincipalID: strings.ToLower(in.PrincipalID), PrincipalType: pt, Created: now, CreatedBy: caller,
		Condition: in.Condition, ConditionVersion: in.ConditionVersion}
	t.roleAssign[id] = ra
	return *ra, true, nil
}

// GetRoleAssignment reads the role assignment name at scope.
func (d *Directory) GetRoleAssignment(tenant, scope, name string) (RoleAssignment, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return RoleAssignment{}, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if err := d.checkScope(t, scope); err != nil {
		return RoleAssignment{}, err
	}
	ra := t.roleAssign[strings.ToLower(scope+"/providers/Microsoft.Authorization/roleAssignments/"+name)]
	if ra == nil {
		return RoleAssignment{}, errf(404, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", name)
	}
	return *ra, nil
}

// DeleteRoleAssignment removes it; found=false when there was none.
func (d *Directory) DeleteRoleAssignment(tenant, scope, name, caller string) (RoleAssignment, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return RoleAssignment{}, false, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if err := d.checkScope(t, scope); err != nil {
		return RoleAssignment{}, false, err
	}
	id := strings.ToLower(scope + "/providers/Microsoft.Authorization/roleAssignments/" + name)
	ra := t.roleAssign[id]
	if caller != "" {
		const action = "Microsoft.Authorization/roleAssignments/delete"
		attrs := abacAttrs{action: action}
		if ra != nil {
			attrs.resourceRole, attrs.resourcePrincipalType = roleGUID(ra.RoleDefinitionID), ra.PrincipalType
		}
		ok, conditional := mayManageAssignments(t, caller, scope, PermWriteAssignments, attrs)
		if !ok && conditional && ra != nil {
			return RoleAssignment{}, false, abacFailed(caller, action, scope+"/providers/Microsoft.Authorization/roleAssignments/"+name)
		}
		if !ok && !conditional {
			return RoleAssignment{}, false, authorizationFailed(caller, action, scope+"/providers/Microsoft.Authorization/roleAssignments/"+name)
		}
	}
	if ra == nil {
		return RoleAssignment{}, false, nil
	}
	delete(t.roleAssign, id)
	return *ra, true, nil
}

// ListRoleAssignments returns assignments at, above or below scope,
// optionally only those of principalID.
func (d *Directory) ListRoleAssignments(tenant, scope, principalID string) ([]RoleAssignment, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return nil, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if err := d.checkScope(t, scope); err != nil {
		return nil, err
	}
	var out []RoleAssignment
	for _, ra := range t.roleAssign {
		if principalID != "" && !strings.EqualFold(ra.PrincipalID, principalID) {
			continue
		}
		if scopeCovers(ra.Scope, scope) || scopeCovers(scope, ra.Scope) {
			out = append(out, *ra)
		}
	}
	slices.SortFunc(out, func(a, b RoleAssignment) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
