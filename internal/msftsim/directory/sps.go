package directory

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"
)

// SPKey addresses a service principal by object ID or appId.
type SPKey struct{ ID, AppID string }

func (k SPKey) String() string {
	if k.ID != "" {
		return k.ID
	}
	return k.AppID
}

func (s *ServicePrincipal) snapshot() ServicePrincipal {
	c := *s
	c.AppRoles = slices.Clone(s.AppRoles)
	c.ServicePrincipalNames = slices.Clone(s.ServicePrincipalNames)
	return c
}

func (a *AppRoleAssignment) snapshot() AppRoleAssignment { return *a }

func (d *Directory) findSP(t *Tenant, key SPKey, now time.Time) (*ServicePrincipal, *Error) {
	if key.ID != "" && !IsGUID(key.ID) {
		return nil, errf(400, "Request_BadRequest", "Invalid object identifier '%s'.", key.ID)
	}
	var s *ServicePrincipal
	if key.ID != "" {
		s = t.sps[strings.ToLower(key.ID)]
	} else {
		s = t.spsByAppID[strings.ToLower(key.AppID)]
	}
	if s == nil || !s.vis.seen(now) {
		return nil, notFound(key.String())
	}
	return s, nil
}

// CreateServicePrincipal creates the service principal of appID in tenant.
// The app must be visible here (or be a multi-tenant app of another tenant).
func (d *Directory) CreateServicePrincipal(tenant, appID string, c Caller, lag Lag) (ServicePrincipal, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return ServicePrincipal{}, err
	}
	appID = strings.ToLower(appID)
	now := d.clock.Now()
	if _, dup := t.spsByAppID[appID]; dup {
		e := errf(409, "Request_MultipleObjectsWithSameKeyValue",
			"The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", appID)
		e.Details = []ErrorDetail{{Code: "ObjectConflict", Message: e.Message, Target: "servicePrincipalNames"}}
		return ServicePrincipal{}, e
	}
	a := t.appsByAppID[appID]
	if a != nil && !a.vis.seen(now) {
		if c.OwnedByOnly {
			return ServicePrincipal{}, errf(403, "Authorization_RequestDenied",
				"When using this permission, the backing application of the service principal being created must in the local tenant")
		}
		return ServicePrincipal{}, noBackingApp(appID)
	}
	if a == nil {
		a = d.homeApp(t, appID)
	}
	if a == nil {
		return ServicePrincipal{}, noBackingApp(appID)
	}
	if a.TenantID == t.ID {
		if err := checkOwner(a, c); err != nil {
			return ServicePrincipal{}, err
		}
	}
	sp := d.newAppSP(t, a, now, lag)
	return sp.snapshot(), nil
}

// noBackingApp is Graph's answer to a service principal for an appId it
// cannot find (or not yet: replication lag), with the detail callers saw.
func noBackingApp(appID string) *Error {
	e := errf(400, "Request_BadRequest", "The appId '%s' of the service principal does not reference a valid application object.", appID)
	e.Details = []ErrorDetail{{Code: "NoBackingApplicationObject", Message: e.Message, Target: "appId"}}
	return e
}

// UpsertServicePrincipal is PATCH /servicePrincipals(appId='x') with
// Prefer: create-if-missing: an existing service principal of appID is
// "updated" (created=false, 204), otherwise it is created with the rules
// of CreateServicePrincipal (lag, OwnedBy).
func (d *Directory) UpsertServicePrincipal(tenant, appID string, c Caller, lag Lag) (ServicePrincipal, bool, error) {
	d.mu.RLock()
	t := d.tenantLocked(tenant)
	var existing *ServicePrincipal
	if t != nil {
		existing = t.spsByAppID[strings.ToLower(appID)]
	}
	var snap ServicePrincipal
	if existing != nil {
		snap = existing.snapshot()
	}
	d.mu.RUnlock()
	if existing != nil {
		return snap, false, nil
	}
	sp, err := d.CreateServicePrincipal(tenant, appID, c, lag)
	var e *Error
	if errors.As(err, &e) && e.Status == 409 {
		// Created meanwhile: the upsert updates it.
		d.mu.RLock()
		defer d.mu.RUnlock()
		if s := t.spsByAppID[strings.ToLower(appID)]; s != nil {
			return s.snapshot(), false, nil
		}
	}
	return sp, err == nil, err
}

func (d *Directory) newAppSP(t *Tenant, a *Application, now time.Time, lag Lag) *ServicePrincipal {
	sp := &ServicePrincipal{
		ID: d.NewID(), AppID: a.AppID, TenantID: t.ID, DisplayName: a.DisplayName, AppOwnerOrganizationID: a.TenantID,
		AccountEnabled: true, ServicePrincipalNames: []string{a.AppID}, ServicePrincipalType: "Application",
		Created: now, vis: t.newVisibility(now, lag),
	}
	t.sps[sp.ID] = sp
	t.spsByAppID[sp.AppID] = sp
	return sp
}

func (d *Directory) deleteSPLocked(t *Tenant, sp *ServicePrincipal) {
	delete(t.sps, sp.ID)
	delete(t.spsByAppID, sp.AppID)
	for id, a := range t.assignments {
		if a.PrincipalID == sp.ID || a.ResourceID == sp.ID {
			delete(t.assignments, id)
		}
	}
}

// GetServicePrincipal reads one service principal (subject to lag).
func (d *Directory) GetServicePrincipal(tenant string, key SPKey) (ServicePrincipal, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return ServicePrincipal{}, err
	}
	s, err := d.findSP(t, key, d.clock.Now())
	if err != nil {
		return ServicePrincipal{}, err
	}
	return s.snapshot(), nil
}

// ListServicePrincipals returns visible service principals matching keep.
func (d *Directory) ListServicePrincipals(tenant string, keep func(*ServicePrincipal) bool) ([]ServicePrincipal, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	var out []ServicePrincipal
	for _, s := range t.sps {
		if keep(s) && s.vis.seen(now) {
			out = append(out, s.snapshot())
		}
	}
	slices.SortFunc(out, func(x, y ServicePrincipal) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// DeleteServicePrincipal soft-deletes a service principal (to deleted
// items) and removes its assignments. An OwnedBy caller may delete only
// the service principal of an application it owns (403 otherwise; the
// simulator does not model service principal owners of their own).
func (d *Directory) DeleteServicePrincipal(tenant string, key SPKey, c Caller) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	now := d.clock.Now()
	s, err := d.findSP(t, key, now)
	if err != nil {
		return err
	}
	if c.OwnedByOnly {
		a := t.appsByAppID[s.AppID]
		if a == nil || !slices.Contains(a.OwnerIDs, c.SPID) {
			return errf(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		}
	}
	d.softDeleteSPLocked(t, s, now)
	return nil
}

// newAssignmentID mimics Graph's 43-character base64url assignment IDs.
func (d *Directory) newAssignmentID() string {
	id := strings.ReplaceAll(d.NewID(), "-", "") + strings.ReplaceAll(d.NewID(), "-", "")[:16]
	b := make([]byte, 0, 32)
	for i := 0; i+1 < len(id) && len(b) < 32; i += 2 {
		b = append(b, unhex(id[i])<<4|unhex(id[i+1]))
	}
	return base64.RawURLEncoding.EncodeToString(b[:32])
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// AssignAppRole is POST /servicePrincipals/{resource}/appRoleAssignedTo:
// admin consent of one application permission. objectLag delays Graph
// reads of the assignment; consentLag delays its appearance in tokens.
func (d *Directory) AssignAppRole(tenant, resourceSPID, principalID, appRoleID string, objectLag, consentLag Lag) (AppRoleAssignment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return AppRoleAssignment{}, err
	}
	now := d.clock.Now()
	res, err := d.findSP(t, SPKey{ID: resourceSPID}, now)
	if err != nil {
		return AppRoleAssignment{}, err
	}
	p := t.sps[strings.ToLower(principalID)]
	if p == nil || !p.vis.seen(now) {
		return AppRoleAssignment{}, errf(400, "Request_BadRequest", "Not a valid reference update.")
	}
	role := slices.IndexFunc(res.AppRoles, func(r AppRole) bool { return strings.EqualFold(r.ID, appRoleID) })
	if role < 0 {
		return AppRoleAssignment{}, errf(400, "Request_BadRequest",
			"Permission being assigned was not found on application '%s'.", res.AppID)
	}
	for _, a := range t.assignments {
		if a.PrincipalID == p.ID && a.ResourceID == res.ID && strings.EqualFold(a.AppRoleID, appRoleID) {
			return AppRoleAssignment{}, errf(400, "Request_BadRequest", "Permission being assigned already exists on the object")
		}
	}
	a := &AppRoleAssignment{
		ID: d.newAssignmentID(), AppRoleID: strings.ToLower(appRoleID), PrincipalID: p.ID, PrincipalType: "ServicePrincipal",
		PrincipalDisplayName: p.DisplayName, ResourceID: res.ID, ResourceDisplayName: res.DisplayName, Created: now,
		vis: t.newVisibility(now, objectLag), tokenVis: t.newVisibility(now, consentLag),
	}
	t.assignments[a.ID] = a
	return a.snapshot(), nil
}

func (d *Directory) listAssignments(tenant string, spID string, keep func(*AppRoleAssignment, string) bool) ([]AppRoleAssignment, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	s, err := d.findSP(t, SPKey{ID: spID}, now)
	if err != nil {
		return nil, err
	}
	var out []AppRoleAssignment
	for _, a := range t.assignments {
		if keep(a, s.ID) && a.vis.seen(now) {
			out = append(out, a.snapshot())
		}
	}
	slices.SortFunc(out, func(x, y AppRoleAssignment) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// AppRoleAssignedTo lists the assignments granted on resource service principal spID.
func (d *Directory) AppRoleAssignedTo(tenant, spID string) ([]AppRoleAssignment, error) {
	return d.listAssignments(tenant, spID, func(a *AppRoleAssignment, id string) bool { return a.ResourceID == id })
}

// AppRoleAssignments lists the assignments held by principal spID.
func (d *Directory) AppRoleAssignments(tenant, spID string) ([]AppRoleAssignment, error) {
	return d.listAssignments(tenant, spID, func(a *AppRoleAssignment, id string) bool { return a.PrincipalID == id })
}

// DeleteAppRoleAssignment removes assignment id granted on resource spID.
func (d *Directory) DeleteAppRoleAssignment(tenant, spID, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	a := t.assignments[id]
	if a == nil || (!strings.EqualFold(a.ResourceID, spID) && !strings.EqualFold(a.PrincipalID, spID)) {
		return notFound(id)
	}
	delete(t.assignments, id)
	return nil
}

// AddDirectoryRole assigns an Entra directory role (POST
// /roleManagement/directory/roleAssignments).
func (d *Directory) AddDirectoryRole(tenant, principalID, roleDefinitionID, scope string) (DirectoryRoleAssignment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return DirectoryRoleAssignment{}, err
	}
	if scope == "" {
		scope = "/"
	}
	// A user, a group or a service principal may hold a directory role
	// [G-unifiedroleassignment]; a group only when it is role-assignable.
	if err := d.checkRolePrincipalLocked(t, principalID); err != nil {
		return DirectoryRoleAssignment{}, err
	}
	if !IsGUID(roleDefinitionID) {
		return DirectoryRoleAssignment{}, errf(400, "Request_BadRequest", "Invalid roleDefinitionId '%s'.", roleDefinitionID)
	}
	for _, r := range t.dirRoles {
		if strings.EqualFold(r.PrincipalID, principalID) && strings.EqualFold(r.RoleDefinitionID, roleDefinitionID) && r.DirectoryScopeID == scope {
			return DirectoryRoleAssignment{}, errf(400, "Request_BadRequest",
				"A conflicting object with one or more of the specified property values is present in the directory.")
		}
	}
	ra := &DirectoryRoleAssignment{ID: d.newAssignmentID(), RoleDefinitionID: strings.ToLower(roleDefinitionID),
		PrincipalID: strings.ToLower(principalID), DirectoryScopeID: scope}
	t.dirRoles[ra.ID] = ra
	return *ra, nil
}

// RemoveDirectoryRole deletes the directory role assignment id.
func (d *Directory) RemoveDirectoryRole(tenant, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	for k := range t.dirRoles {
		if strings.EqualFold(k, id) {
			delete(t.dirRoles, k)
			return nil
		}
	}
	return errf(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

// DirectoryRoles lists the tenant's directory role assignments.
func (d *Directory) DirectoryRoles(tenant string) ([]DirectoryRoleAssignment, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return nil, err
	}
	out := make([]DirectoryRoleAssignment, 0, len(t.dirRoles))
	for _, r := range t.dirRoles {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(x, y DirectoryRoleAssignment) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}
