package microsoft

import (
	"context"
	"net/url"
	"path"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// RoleAssignment is an Azure RBAC role assignment.
type RoleAssignment struct {
	ID               string // full resource ID
	Name             string // the assignment's GUID
	Scope            string
	RoleDefinitionID string // full resource ID of the role definition
	PrincipalID      string
	PrincipalType    string
}

// RoleDefinition is an Azure role.
type RoleDefinition struct {
	ID       string // full resource ID, what a role assignment names
	Name     string // the GUID
	RoleName string // e.g. "Microsoft Sentinel Reader"
}

// roleAssignmentNamespace derives role assignment names (UUID v5).
var roleAssignmentNamespace = uuid.MustParse("6f1c2c39-8d1e-4a5e-9a57-0f2a3d8c9b10")

// RoleAssignmentName is the deterministic name of the assignment of role
// (a role definition GUID or ID) to principalID at scope: a UUID derived
// from the three, case-insensitively. Creating it twice PUTs the same
// resource, so the create is idempotent.
func RoleAssignmentName(scope, principalID, roleDefinitionID string) string {
	key := strings.ToLower(strings.TrimSuffix(scope, "/") + "|" + principalID + "|" + path.Base(roleDefinitionID))
	return uuid.NewSHA1(roleAssignmentNamespace, []byte(key)).String()
}

func aerr(op string, err error) error { return classify("arm", op, APIARM, err) }

func (d *Directory) arm(ctx context.Context) (*armauthorization.RoleAssignmentsClient, *armauthorization.RoleDefinitionsClient, error) {
	ra, rd, err := d.s.armClients()
	if err != nil {
		return nil, nil, aerr("arm client", err)
	}
	if _, _, err := d.s.rawToken(ctx, APIARM); err != nil {
		return nil, nil, err
	}
	return ra, rd, nil
}

func toRoleAssignment(r armauthorization.RoleAssignment) RoleAssignment {
	out := RoleAssignment{ID: deref(r.ID), Name: deref(r.Name)}
	if p := r.Properties; p != nil {
		out.Scope, out.RoleDefinitionID, out.PrincipalID = deref(p.Scope), deref(p.RoleDefinitionID), deref(p.PrincipalID)
		if p.PrincipalType != nil {
			out.PrincipalType = string(*p.PrincipalType)
		}
	}
	return out
}

// CreateRoleAssignment gives the service principal principalID the role
// roleDefinitionID (full ID, or the role's GUID) at scope, through
// armauthorization/v2:
//
//	PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01
//
// name is RoleAssignmentName(scope, principal, role), so the PUT is
// idempotent and retried as such. principalType ServicePrincipal is sent,
// which spares the replication failure of a new principal. 409
// RoleAssignmentExists (the same assignment under another name, made by
// hand) is success: the existing one is read back.
func (d *Directory) CreateRoleAssignment(ctx context.Context, scope, principalID, roleDefinitionID string) (RoleAssignment, error) {
	const op = "PUT roleAssignments/{name}"
	ctx = d.op(ctx, Idempotent) // deterministic name: the same PUT twice is one assignment
	ra, _, err := d.arm(ctx)
	if err != nil {
		return RoleAssignment{}, err
	}
	roleID := roleDefinitionID
	if !strings.Contains(roleID, "/") {
		roleID = subscriptionOf(scope) + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID
	}
	pt := armauthorization.PrincipalTypeServicePrincipal
	resp, err := ra.Create(ctx, scope, RoleAssignmentName(scope, principalID, roleID), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{PrincipalID: &principalID, RoleDefinitionID: &roleID, PrincipalType: &pt}}, nil)
	if err == nil {
		return toRoleAssignment(resp.RoleAssignment), nil
	}
	err = aerr(op, err)
	if IsClass(err, mserr.ClassConflict) {
		as, lerr := d.ListRoleAssignments(ctx, scope, principalID)
		if lerr != nil {
			return RoleAssignment{}, lerr
		}
		for _, a := range as {
			if strings.EqualFold(path.Base(a.RoleDefinitionID), path.Base(roleID)) && strings.EqualFold(a.Scope, scope) {
				return a, nil
			}
		}
	}
	return RoleAssignment{}, err
}

// subscriptionOf returns "/subscriptions/{id}" of an ARM scope.
func subscriptionOf(scope string) string {
	p := strings.Split(strings.Trim(scope, "/"), "/")
	if len(p) >= 2 && strings.EqualFold(p[0], "subscriptions") {
		return "/subscriptions/" + p[1]
	}
	return ""
}

// GetRoleAssignment reads the assignment name at scope.
func (d *Directory) GetRoleAssignment(ctx context.Context, scope, name string) (RoleAssignment, error) {
	ctx = d.op(ctx, Idempotent)
	ra, _, err := d.arm(ctx)
	if err != nil {
		return RoleAssignment{}, err
	}
	resp, err := ra.Get(ctx, scope, name, nil)
	if err != nil {
		return RoleAssignment{}, aerr("GET roleAssignments/{name}", err)
	}
	return toRoleAssignment(resp.RoleAssignment), nil
}

// DeleteRoleAssignment removes the assignment name at scope; nothing to
// delete (204) is success.
func (d *Directory) DeleteRoleAssignment(ctx context.Context, scope, name string) error {
	ctx = d.op(ctx, Idempotent)
	ra, _, err := d.arm(ctx)
	if err != nil {
		return err
	}
	if _, err := ra.Delete(ctx, scope, name, nil); err != nil && !IsClass(aerr("DELETE roleAssignments/{name}", err), mserr.ClassNotFound) {
		return aerr("DELETE roleAssignments/{name}", err)
	}
	return nil
}

// ListRoleAssignments lists the assignments that apply at scope, of
// principalID when given ($filter=principalId eq '...').
func (d *Directory) ListRoleAssignments(ctx context.Context, scope, principalID string) ([]RoleAssignment, error) {
	const op = "GET roleAssignments"
	ctx = d.op(ctx, Idempotent)
	ra, _, err := d.arm(ctx)
	if err != nil {
		return nil, err
	}
	var opts *armauthorization.RoleAssignmentsClientListForScopeOptions
	if principalID != "" {
		// This SDK call appends $filter unencoded (unlike the role
		// definitions list): encode the spaces here.
		f := "principalId%20eq%20'" + principalID + "'"
		opts = &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &f}
	}
	var out []RoleAssignment
	for p := ra.NewListForScopePager(scope, opts); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, aerr(op, err)
		}
		for _, a := range page.Value {
			if a != nil {
				out = append(out, toRoleAssignment(*a))
			}
		}
	}
	return out, nil
}

// RoleDefinitionByName finds the role named roleName (e.g. "Microsoft
// Sentinel Reader") that can be assigned at scope.
func (d *Directory) RoleDefinitionByName(ctx context.Context, scope, roleName string) (RoleDefinition, error) {
	const op = "GET roleDefinitions"
	ctx = d.op(ctx, Idempotent)
	_, rd, err := d.arm(ctx)
	if err != nil {
		return RoleDefinition{}, err
	}
	f := "roleName eq '" + strings.ReplaceAll(roleName, "'", "''") + "'" // this SDK call encodes $filter itself
	for p := rd.NewListPager(scope, &armauthorization.RoleDefinitionsClientListOptions{Filter: &f}); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return RoleDefinition{}, aerr(op, err)
		}
		for _, r := range page.Value {
			if r != nil && r.Properties != nil && strings.EqualFold(deref(r.Properties.RoleName), roleName) {
				return RoleDefinition{ID: deref(r.ID), Name: deref(r.Name), RoleName: deref(r.Properties.RoleName)}, nil
			}
		}
	}
	return RoleDefinition{}, &mserr.Error{Service: "arm", Operation: op, Status: 404, Code: "RoleDefinitionDoesNotExist", Class: mserr.ClassNotFound,
		Message: "no role named " + roleName + " at this scope", Remedy: "Check the role name; custom roles must be assignable at the workspace's scope."}
}

// GetWorkspace reads a Log Analytics workspace from ARM and returns its
// customerId (the Workspace ID the query API takes).
func (d *Directory) GetWorkspace(ctx context.Context, ws Workspace) (string, error) {
	return d.s.workspaceCustomerID(d.op(ctx, Idempotent), &ws)
}

// Query runs a Log Analytics query with the directory's credentials.
func (d *Directory) Query(ctx context.Context, workspaceID, query string) ([][]any, error) {
	return d.s.Query(ctx, workspaceID, query)
}

// WorkspaceRoleAssignments reads the Azure role assignments of this
// session's own service principal that apply at the Sentinel workspace:
// assigned on the workspace or inherited from its resource group,
// subscription or a management group, directly or through a group:
//
//	GET {workspace}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope() and assignedTo('{oid}')
//
// ("atScope() and assignedTo('{objectId}')": the assignments of that
// principal at or above the scope, per "List Azure role assignments using
// the REST API", https://learn.microsoft.com/azure/role-based-access-control/role-assignments-list-rest).
// The principal is the ARM token's oid claim (the service principal's
// object ID), so an integration needs no provisioner for it. Reading
// needs Microsoft.Authorization/roleAssignments/read, which every
// Sentinel role grants (Microsoft.Authorization/*/read): a 403
// AuthorizationFailed means the app holds no Sentinel role there.
func (s *Session) WorkspaceRoleAssignments(ctx context.Context, ws *Workspace) (principalID string, _ []RoleAssignment, _ error) {
	const op = "GET roleAssignments atScope"
	ctx = s.operation(ctx)
	if _, err := s.workspaceURL(op, ws); err != nil { // a workspace and an ARM endpoint
		return "", nil, err
	}
	scope := ws.ResourceID()
	ra, _, err := s.armClients()
	if err != nil {
		return "", nil, aerr("arm client", err)
	}
	_, tok, err := s.rawToken(ctx, APIARM)
	if err != nil {
		return "", nil, err
	}
	if tok.PrincipalID == "" {
		return "", nil, &mserr.Error{Service: "arm", Operation: op, Code: "NoPrincipal", Class: mserr.ClassUnknown,
			Message: "the Azure Resource Manager token has no oid claim", Remedy: "Contact Dropzone support."}
	}
	// This SDK call appends $filter unencoded: encode the space here.
	f := "atScope()%20and%20assignedTo('" + url.QueryEscape(tok.PrincipalID) + "')"
	var out []RoleAssignment
	for p := ra.NewListForScopePager(scope, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &f}); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return tok.PrincipalID, nil, aerr(op, err)
		}
		for _, a := range page.Value {
			if a != nil {
				out = append(out, toRoleAssignment(*a))
			}
		}
	}
	return tok.PrincipalID, out, nil
}
