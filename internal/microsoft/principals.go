package microsoft

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/rolemanagement"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// ServicePrincipal is an application's service principal in the tenant.
type ServicePrincipal struct {
	ObjectID    string
	AppID       string
	DisplayName string
	AppRoles    []AppRole // the roles the application exposes (a resource API's permissions)
}

// AppRole is one app role a resource service principal exposes.
type AppRole struct {
	ID    string
	Value string // e.g. "User.Read.All"
}

// AppRoleAssignment is an application permission granted (admin consent).
type AppRoleAssignment struct {
	ID          string
	PrincipalID string // the client's service principal
	ResourceID  string // the resource API's service principal
	AppRoleID   string
}

// DirectoryRoleAssignment is an Entra role held by a principal.
type DirectoryRoleAssignment struct {
	ID               string
	PrincipalID      string
	RoleDefinitionID string
	DirectoryScopeID string
}

// AppManagementPolicy is what the tenant's default app-management policy
// says about client secrets for applications.
type AppManagementPolicy struct {
	Enabled bool
	// PasswordAdditionBlocked: new client secrets are refused.
	PasswordAdditionBlocked bool
	// PasswordMaxLifetime is the longest secret lifetime allowed, as an
	// ISO 8601 duration ("P180D"); "" when not restricted.
	PasswordMaxLifetime string
	// KeyMaxLifetime is the longest certificate (key credential) validity
	// allowed (asymmetricKeyLifetime), as an ISO 8601 duration; "" when
	// not restricted.
	KeyMaxLifetime string
}

// GetServicePrincipalByAppID: GET /servicePrincipals(appId='{appId}').
func (d *Directory) GetServicePrincipalByAppID(ctx context.Context, appID string) (ServicePrincipal, error) {
	const op = "GET /servicePrincipals(appId=)"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return ServicePrincipal{}, err
	}
	sp, err := g.ServicePrincipalsWithAppId(&appID).Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{
			Select: []string{"id", "appId", "displayName", "appRoles"}}})
	if err != nil {
		return ServicePrincipal{}, gerr(op, err)
	}
	return toServicePrincipal(sp), nil
}

func toServicePrincipal(sp models.ServicePrincipalable) ServicePrincipal {
	out := ServicePrincipal{ObjectID: deref(sp.GetId()), AppID: deref(sp.GetAppId()), DisplayName: deref(sp.GetDisplayName())}
	for _, r := range sp.GetAppRoles() {
		if r.GetId() != nil {
			out.AppRoles = append(out.AppRoles, AppRole{ID: r.GetId().String(), Value: deref(r.GetValue())})
		}
	}
	return out
}

// CreateServicePrincipal creates appID's service principal in the tenant,
// or returns the one that exists:
//
//	POST /servicePrincipals {"appId": ...}
//
// Not idempotent as a request, but Graph refuses a second service
// principal for one appId (409 Request_MultipleObjectsWithSameKeyValue),
// which is taken as success by re-reading by appId. After an answer that
// leaves open whether it landed (timeout, 5xx), the principal is re-read
// by appId before the POST is sent again. Replication lag of a new
// application comes back as mserr.ClassNotReplicated (IsReplicationLag).
func (d *Directory) CreateServicePrincipal(ctx context.Context, appID string) (ServicePrincipal, error) {
	const op = "POST /servicePrincipals"
	for attempt := 1; ; attempt++ {
		wctx := d.op(ctx, NotIdempotent) // a create: resent only when it provably did not land
		g, err := d.graph(wctx)
		if err != nil {
			return ServicePrincipal{}, err
		}
		body := models.NewServicePrincipal()
		body.SetAppId(&appID)
		sp, err := g.ServicePrincipals().Post(wctx, body, nil)
		if err == nil {
			return toServicePrincipal(sp), nil
		}
		err = gerr(op, err)
		switch {
		case IsClass(err, mserr.ClassConflict):
			return d.GetServicePrincipalByAppID(ctx, appID) // already exists: success
		case !ambiguous(ctx, err) || attempt >= maxAmbiguousAttempts:
			return ServicePrincipal{}, err
		}
		if sp, rerr := d.GetServicePrincipalByAppID(ctx, appID); rerr == nil {
			return sp, nil // it landed
		}
	}
}

// DeleteServicePrincipal: DELETE /servicePrincipals/{id}; already gone is
// success.
func (d *Directory) DeleteServicePrincipal(ctx context.Context, objectID string) error {
	const op = "DELETE /servicePrincipals/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	if err := g.ServicePrincipals().ByServicePrincipalId(objectID).Delete(ctx, nil); err != nil && !IsClass(gerr(op, err), mserr.ClassNotFound) {
		return gerr(op, err)
	}
	return nil
}

// ListAppRoleAssignments lists the app roles granted to the service
// principal principalID: GET /servicePrincipals/{id}/appRoleAssignments.
func (d *Directory) ListAppRoleAssignments(ctx context.Context, principalID string) ([]AppRoleAssignment, error) {
	const op = "GET /servicePrincipals/{id}/appRoleAssignments"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return nil, err
	}
	b := g.ServicePrincipals().ByServicePrincipalId(principalID).AppRoleAssignments()
	page, err := b.Get(ctx, nil)
	var out []AppRoleAssignment
	for {
		if err != nil {
			return nil, gerr(op, err)
		}
		for _, a := range page.GetValue() {
			out = append(out, toAssignment(a))
		}
		next := page.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		page, err = b.WithUrl(*next).Get(ctx, nil)
	}
}

func toAssignment(a models.AppRoleAssignmentable) AppRoleAssignment {
	out := AppRoleAssignment{ID: deref(a.GetId())}
	if a.GetPrincipalId() != nil {
		out.PrincipalID = a.GetPrincipalId().String()
	}
	if a.GetResourceId() != nil {
		out.ResourceID = a.GetResourceId().String()
	}
	if a.GetAppRoleId() != nil {
		out.AppRoleID = a.GetAppRoleId().String()
	}
	return out
}

// findAssignment re-reads principalID's grants for (resourceID, appRoleID).
func (d *Directory) findAssignment(ctx context.Context, resourceID, principalID, appRoleID string) (AppRoleAssignment, bool, error) {
	as, err := d.ListAppRoleAssignments(ctx, principalID)
	if err != nil {
		return AppRoleAssignment{}, false, err
	}
	for _, a := range as {
		if strings.EqualFold(a.ResourceID, resourceID) && strings.EqualFold(a.AppRoleID, appRoleID) {
			return a, true, nil
		}
	}
	return AppRoleAssignment{}, false, nil
}

// AssignAppRole grants app role appRoleID of the resource service
// principal resourceID to the service principal principalID (admin
// consent for one application permission):
//
//	POST /servicePrincipals/{resourceId}/appRoleAssignedTo
//
// Not idempotent as a request; Graph refuses a duplicate (400 "Permission
// being assigned already exists on the object", class conflict), which is
// success after re-reading the grant. After an ambiguous failure the grants
// are re-read before the POST is sent again.
func (d *Directory) AssignAppRole(ctx context.Context, resourceID, principalID, appRoleID string) (AppRoleAssignment, error) {
	const op = "POST /servicePrincipals/{id}/appRoleAssignedTo"
	ids := map[string]string{"resourceId": resourceID, "principalId": principalID, "appRoleId": appRoleID}
	parsed := map[string]uuid.UUID{}
	for k, v := range ids {
		u, err := uuid.Parse(v)
		if err != nil {
			return AppRoleAssignment{}, &mserr.Error{Service: "graph", Operation: op, Code: "InvalidId", Class: mserr.ClassBadRequest,
				Message: k + " is not a GUID", Remedy: "A dzconnect bug: contact Dropzone support."}
		}
		parsed[k] = u
	}
	for attempt := 1; ; attempt++ {
		wctx := d.op(ctx, NotIdempotent) // a create: resent only when it provably did not land
		g, err := d.graph(wctx)
		if err != nil {
			return AppRoleAssignment{}, err
		}
		body := models.NewAppRoleAssignment()
		r, p, a := parsed["resourceId"], parsed["principalId"], parsed["appRoleId"]
		body.SetResourceId(&r)
		body.SetPrincipalId(&p)
		body.SetAppRoleId(&a)
		got, err := g.ServicePrincipals().ByServicePrincipalId(resourceID).AppRoleAssignedTo().Post(wctx, body, nil)
		if err == nil {
			return toAssignment(got), nil
		}
		err = gerr(op, err)
		if !IsClass(err, mserr.ClassConflict) && (!ambiguous(ctx, err) || attempt >= maxAmbiguousAttempts) {
			return AppRoleAssignment{}, err
		}
		found, ok, rerr := d.findAssignment(ctx, resourceID, principalID, appRoleID)
		switch {
		case rerr != nil:
			return AppRoleAssignment{}, rerr
		case ok:
			return found, nil // it exists (or landed): success
		case IsClass(err, mserr.ClassConflict):
			return AppRoleAssignment{}, err // refused as a duplicate yet not readable: lag, the caller retries later
		}
	}
}

// RemoveAppRoleAssignment: DELETE /servicePrincipals/{resourceId}/appRoleAssignedTo/{id};
// already gone is success.
func (d *Directory) RemoveAppRoleAssignment(ctx context.Context, resourceID, assignmentID string) error {
	const op = "DELETE /servicePrincipals/{id}/appRoleAssignedTo/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	err = g.ServicePrincipals().ByServicePrincipalId(resourceID).AppRoleAssignedTo().ByAppRoleAssignmentId(assignmentID).Delete(ctx, nil)
	if err != nil && !IsClass(gerr(op, err), mserr.ClassNotFound) {
		return gerr(op, err)
	}
	return nil
}

// ListDirectoryRoleAssignments lists principalID's Entra roles:
// GET /roleManagement/directory/roleAssignments?$filter=principalId eq '..'.
func (d *Directory) ListDirectoryRoleAssignments(ctx context.Context, principalID string) ([]DirectoryRoleAssignment, error) {
	const op = "GET /roleManagement/directory/roleAssignments"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return nil, err
	}
	filter := "principalId eq '" + strings.ReplaceAll(principalID, "'", "''") + "'"
	b := g.RoleManagement().Directory().RoleAssignments()
	page, err := b.Get(ctx, &rolemanagement.DirectoryRoleAssignmentsRequestBuilderGetRequestConfiguration{
		QueryParameters: &rolemanagement.DirectoryRoleAssignmentsRequestBuilderGetQueryParameters{Filter: &filter}})
	var out []DirectoryRoleAssignment
	for {
		if err != nil {
			return nil, gerr(op, err)
		}
		for _, r := range page.GetValue() {
			out = append(out, DirectoryRoleAssignment{ID: deref(r.GetId()), PrincipalID: deref(r.GetPrincipalId()),
				RoleDefinitionID: deref(r.GetRoleDefinitionId()), DirectoryScopeID: deref(r.GetDirectoryScopeId())})
		}
		next := page.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		page, err = b.WithUrl(*next).Get(ctx, nil)
	}
}

// AssignDirectoryRole gives principalID the Entra role roleDefinitionID
// at scope ("" is the tenant, "/"):
//
//	POST /roleManagement/directory/roleAssignments
//
// Graph refuses a duplicate (400 "A conflicting object ..."), which is
// success after re-reading; an ambiguous failure is re-read before the
// POST is sent again.
func (d *Directory) AssignDirectoryRole(ctx context.Context, principalID, roleDefinitionID, scope string) (DirectoryRoleAssignment, error) {
	const op = "POST /roleManagement/directory/roleAssignments"
	if scope == "" {
		scope = "/"
	}
	find := func() (DirectoryRoleAssignment, bool, error) {
		rs, err := d.ListDirectoryRoleAssignments(ctx, principalID)
		if err != nil {
			return DirectoryRoleAssignment{}, false, err
		}
		for _, r := range rs {
			if strings.EqualFold(r.RoleDefinitionID, roleDefinitionID) && r.DirectoryScopeID == scope {
				return r, true, nil
			}
		}
		return DirectoryRoleAssignment{}, false, nil
	}
	for attempt := 1; ; attempt++ {
		wctx := d.op(ctx, NotIdempotent) // a create: resent only when it provably did not land
		g, err := d.graph(wctx)
		if err != nil {
			return DirectoryRoleAssignment{}, err
		}
		body := models.NewUnifiedRoleAssignment()
		body.SetPrincipalId(&principalID)
		body.SetRoleDefinitionId(&roleDefinitionID)
		body.SetDirectoryScopeId(&scope)
		r, err := g.RoleManagement().Directory().RoleAssignments().Post(wctx, body, nil)
		if err == nil {
			return DirectoryRoleAssignment{ID: deref(r.GetId()), PrincipalID: deref(r.GetPrincipalId()),
				RoleDefinitionID: deref(r.GetRoleDefinitionId()), DirectoryScopeID: deref(r.GetDirectoryScopeId())}, nil
		}
		err = gerr(op, err)
		if !IsClass(err, mserr.ClassConflict) && (!ambiguous(ctx, err) || attempt >= maxAmbiguousAttempts) {
			return DirectoryRoleAssignment{}, err
		}
		found, ok, rerr := find()
		switch {
		case rerr != nil:
			return DirectoryRoleAssignment{}, rerr
		case ok:
			return found, nil
		case IsClass(err, mserr.ClassConflict):
			return DirectoryRoleAssignment{}, err
		}
	}
}

// RemoveDirectoryRoleAssignment: DELETE /roleManagement/directory/roleAssignments/{id};
// already gone is success.
func (d *Directory) RemoveDirectoryRoleAssignment(ctx context.Context, id string) error {
	const op = "DELETE /roleManagement/directory/roleAssignments/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	if err := g.RoleManagement().Directory().RoleAssignments().ByUnifiedRoleAssignmentId(id).Delete(ctx, nil); err != nil &&
		!IsClass(gerr(op, err), mserr.ClassNotFound) {
		return gerr(op, err)
	}
	return nil
}

// GetAppManagementPolicy reads the tenant's default app-management policy
// (GET /policies/defaultAppManagementPolicy): whether new secrets are
// blocked and their longest lifetime, for applications. Policies assigned
// to one application (appManagementPolicies) are not read yet.
func (d *Directory) GetAppManagementPolicy(ctx context.Context) (AppManagementPolicy, error) {
	const op = "GET /policies/defaultAppManagementPolicy"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return AppManagementPolicy{}, err
	}
	p, err := g.Policies().DefaultAppManagementPolicy().Get(ctx, nil)
	if err != nil {
		return AppManagementPolicy{}, gerr(op, err)
	}
	out := AppManagementPolicy{Enabled: deref(p.GetIsEnabled())}
	if !out.Enabled || p.GetApplicationRestrictions() == nil {
		return out, nil
	}
	for _, r := range p.GetApplicationRestrictions().GetPasswordCredentials() {
		if r.GetState() != nil && *r.GetState() == models.DISABLED_APPMANAGEMENTRESTRICTIONSTATE || r.GetRestrictionType() == nil {
			continue
		}
		switch *r.GetRestrictionType() {
		case models.PASSWORDADDITION_APPCREDENTIALRESTRICTIONTYPE:
			out.PasswordAdditionBlocked = true
		case models.PASSWORDLIFETIME_APPCREDENTIALRESTRICTIONTYPE:
			if r.GetMaxLifetime() != nil {
				out.PasswordMaxLifetime = r.GetMaxLifetime().String()
			}
		}
	}
	readKeyRestrictions(&out, p.GetApplicationRestrictions().GetKeyCredentials())
	return out, nil
}
