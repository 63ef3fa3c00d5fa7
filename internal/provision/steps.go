package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/crashpoint"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// Directory is what the steps call in the customer tenant
// (*microsoft.Directory; each method's retry rules are its own).
type Directory interface {
	GetAppManagementPolicy(ctx context.Context) (microsoft.AppManagementPolicy, error)
	AppManagementPolicyFor(ctx context.Context, uniqueName string) (microsoft.AppManagementPolicy, string, error)
	GetServicePrincipalByAppID(ctx context.Context, appID string) (microsoft.ServicePrincipal, error)
	UpsertApplicationByUniqueName(ctx context.Context, key string, spec microsoft.ApplicationSpec) (microsoft.Application, bool, error)
	GetApplication(ctx context.Context, objectID string) (microsoft.Application, error)
	CreateServicePrincipal(ctx context.Context, appID string) (microsoft.ServicePrincipal, error)
	UpsertServicePrincipal(ctx context.Context, appID, displayName string) (microsoft.ServicePrincipal, bool, error)
	ListAppRoleAssignments(ctx context.Context, principalID string) ([]microsoft.AppRoleAssignment, error)
	AssignAppRole(ctx context.Context, resourceID, principalID, appRoleID string) (microsoft.AppRoleAssignment, error)
	ListDirectoryRoleAssignments(ctx context.Context, principalID string) ([]microsoft.DirectoryRoleAssignment, error)
	GetWorkspace(ctx context.Context, ws microsoft.Workspace) (string, error)
	CreateRoleAssignment(ctx context.Context, scope, principalID, roleDefinitionID string) (microsoft.RoleAssignment, error)
	ListPasswords(ctx context.Context, objectID string) ([]microsoft.PasswordCredential, error)
	// For deprovisioning (deprovision_steps.go):
	GetApplicationByUniqueName(ctx context.Context, key string) (microsoft.Application, error)
	DeleteRoleAssignment(ctx context.Context, scope, name string) error
	DeleteServicePrincipal(ctx context.Context, objectID string) error
	DeleteApplication(ctx context.Context, objectID string) error
	PurgeDeletedItem(ctx context.Context, objectID string) error
	SetApplicationNotes(ctx context.Context, objectID, notes string) error
	AddPassword(ctx context.Context, objectID, displayName string, end time.Time) (microsoft.NewPassword, error)
	RemovePassword(ctx context.Context, objectID, keyID string) error
	UpdateKeyCredentials(ctx context.Context, objectID string, add []microsoft.KeyCredential, removeKeyIDs []string) error
}

// The steps, in order. Step d (resources) runs before b (application):
// b's requiredResourceAccess needs this cloud's app-role IDs, which d reads
// (docs/provisioning.md, "Order").
const (
	StepPolicy           = "policy"            // a
	StepResources        = "resources"         // d
	StepApplication      = "application"       // b
	StepServicePrincipal = "service-principal" // c
	StepPermissions      = "permissions"       // e
	StepDirectoryRole    = "directory-role"    // f
	StepSentinelRole     = "sentinel-role"     // g
	StepClientSecret     = "client-secret"     // h
	StepCertificate      = "certificate"       // i
	StepVerify           = "verify"            // j
)

// Kind returns the provision operation kind, to register on the
// operation registry of both the operation Service and Runner.
func (s *Service) Kind() operation.Kind {
	return operation.Kind{
		Name: KindName,
		Steps: []operation.Step{
			{Name: StepPolicy, Run: s.stepPolicy},
			{Name: StepResources, Run: s.stepResources},
			{Name: StepApplication, Run: s.stepApplication},
			{Name: StepServicePrincipal, Run: s.stepServicePrincipal},
			{Name: StepPermissions, Run: s.stepPermissions},
			{Name: StepDirectoryRole, Run: s.stepDirectoryRole, SkipIf: func(sc operation.StepContext) bool {
				var p Params
				return sc.DecodeParams(&p) == nil && directoryRole(s.baseCatalog(), p) == nil
			}},
			{Name: StepSentinelRole, Run: s.stepSentinelRole, SkipIf: skipUnless(func(p Params) bool {
				return p.Kind == integration.KindSentinel && p.Workspace != nil
			})},
			{Name: StepClientSecret, Run: s.stepClientSecret},
			{Name: StepCertificate, Run: s.stepCertificate, SkipIf: skipUnless(func(p Params) bool { return p.CertificatePEM != "" })},
			{Name: StepVerify, Run: s.stepVerify, MaxAttempts: 14},
		},
		Result:   s.result,
		Finished: s.provisionFinished,
	}
}

// skipUnless is a step's SkipIf from its parameters: skipped (recorded with
// the step before it, not run) when needed says no. The step's Run makes
// the same test (a run that gets there anyway skips itself).
func skipUnless(needed func(Params) bool) func(operation.StepContext) bool {
	return func(sc operation.StepContext) bool {
		var p Params
		return sc.DecodeParams(&p) == nil && !needed(p)
	}
}

// run is one step's context: the parameters, the tenant's directory (the
// operation's provisioner session, new for a retried attempt: see
// sessions), and the provisioner's client ID.
type run struct {
	sc          operation.StepContext
	p           Params
	dir         Directory
	provisioner string
}

func (s *Service) open(ctx context.Context, sc operation.StepContext) (run, error) {
	r := run{sc: sc}
	if err := sc.DecodeParams(&r.p); err != nil {
		return r, operation.Fail(apperr.Internal, "INTERNAL", "", "the operation's parameters cannot be read")
	}
	var ok bool
	if r.dir, r.provisioner, ok = s.reuse(sc); ok {
		return r, nil
	}
	t, err := s.d.Tenants.GetTenant(ctx, s.d.Tx.Conn(), sc.Org, r.p.Tenant)
	if err != nil {
		return r, err
	}
	creds, ok, err := s.d.Consent.ForTenant(ctx, sc.Org, t)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, operation.Fail(apperr.FailedPrecondition, "PROVISIONER_NOT_CONSENTED",
			"Have a tenant administrator consent the provisioner again (GetAdminConsentLink), then provision again.",
			"the organization's provisioner is no longer consented in the tenant")
	}
	if r.dir, err = s.directory(sc, creds); err != nil {
		return r, err
	}
	r.provisioner = creds.ClientID
	return r, nil
}

// integration reads the integration being provisioned (with credentials).
func (s *Service) integration(ctx context.Context, r run) (integration.Integration, error) {
	return s.d.Integrations.GetIntegration(ctx, s.d.Tx.Conn(), r.sc.Org, r.p.Integration)
}

// update applies mutate to the integration under a row lock, in a
// transaction of its own.
func (s *Service) update(ctx context.Context, r run, mutate func(*integration.Integration)) error {
	return s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error { return s.updateIn(ctx, tx, r, mutate) })
}

func (s *Service) updateIn(ctx context.Context, tx uow.Tx, r run, mutate func(*integration.Integration)) error {
	in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, r.sc.Org, r.p.Integration)
	if err != nil {
		return err
	}
	mutate(&in)
	_, err = s.d.Integrations.UpdateIntegration(ctx, tx, in)
	return err
}

// recordObjects writes what the step made in Entra or Azure (e.g. the
// application's IDs) on the integration, one statement, in the
// transaction that records the step's success
// (operation.StepContext.RecordWith): the IDs and the step's outputs
// commit together. A crash before that record leaves neither: the step
// runs again and finds what it made (every such step is an upsert or
// adopts by name). Outside the runner the write is made at once.
func (s *Service) recordObjects(ctx context.Context, r run, o integration.ProvisionedObjects) error {
	write := func(ctx context.Context, tx uow.Tx) error {
		return s.d.Integrations.SetProvisionedObjects(ctx, tx, r.sc.Org, r.p.Integration, o)
	}
	if r.sc.RecordWith(write) {
		return nil
	}
	return write(ctx, s.d.Tx.Conn())
}

// --- a. app-management policy ---------------------------------------------

// policyOut is step a's record.
type policyOut struct {
	SecretsBlocked        bool   `json:"secrets_blocked"`
	UseCertificate        bool   `json:"use_certificate,omitempty"`
	PolicyMaxLifetime     string `json:"policy_max_lifetime,omitempty"`
	SecretLifetimeSeconds int64  `json:"secret_lifetime_seconds,omitempty"`
	// CertificateLifetimeSeconds: the rotate kind's certificate variant.
	CertificateLifetimeSeconds int64 `json:"certificate_lifetime_seconds,omitempty"`
}

// stepPolicy reads the app-management policy that governs the application
// (an app-specific one assigned to it, else the tenant default) and fits
// the secret's lifetime. Idempotent: a read. Secrets blocked without a
// certificate ends the operation blocked-by-policy (the integration's
// state says so) with the remedy.
func (s *Service) stepPolicy(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	// The application's own policy when one is assigned to it (an
	// application adopted by its uniqueName), else the tenant default.
	pol, _, err := r.dir.AppManagementPolicyFor(ctx, r.p.UniqueName)
	if err != nil {
		return nil, err
	}
	if pol.PasswordAdditionBlocked {
		if r.p.CertificatePEM != "" {
			return outputs(policyOut{SecretsBlocked: true, UseCertificate: true})
		}
		if err := s.update(ctx, r, func(in *integration.Integration) { in.State = integration.StateBlockedByPolicy }); err != nil {
			return nil, err
		}
		return nil, operation.Fail(apperr.FailedPrecondition, "blocked-by-policy",
			"Provision again with a certificate (certificate_pem; dzctl --certificate), or have a tenant administrator exempt the application from the passwordAddition restriction of the tenant's default app-management policy (Entra ID > Enterprise applications > App management policies).",
			"the tenant's app-management policy does not allow client secrets (restriction passwordAddition) and no certificate was given")
	}
	requested := time.Duration(r.p.SecretLifetimeSeconds) * time.Second
	life, err := FitLifetime(requested, pol.PasswordMaxLifetime)
	if err != nil {
		return nil, operation.Fail(apperr.FailedPrecondition, "blocked-by-policy",
			"Have a tenant administrator allow a longer secret lifetime in the tenant's app-management policy.",
			"the tenant's app-management policy: %s", err)
	}
	return outputs(policyOut{PolicyMaxLifetime: pol.PasswordMaxLifetime, SecretLifetimeSeconds: int64(life.Seconds())})
}

// --- d. resource service principals -----------------------------------------

// permission is one catalog application permission as found in the tenant.
type permission struct {
	ResourceAppID string `json:"resource_app_id"`
	Resource      string `json:"resource"`
	Value         string `json:"value"`
	AppRoleID     string `json:"app_role_id,omitempty"`
	ResourceSP    string `json:"resource_sp,omitempty"`
	Requirement   string `json:"requirement"`
	// Status: "available", "not-licensed" (the tenant lacks the product's
	// service principal) or "unknown-role" (the catalog's value is not
	// among the resource's app roles in this cloud).
	Status string `json:"status"`
}

type resourcesOut struct {
	Permissions []permission `json:"permissions"`
}

// stepResources resolves, per resource API of the catalog, its service
// principal by appId and the catalog's app roles on it. A product the
// tenant lacks (404) makes its permissions "not-licensed"; the rest goes
// on. Idempotent: reads.
func (s *Service) stepResources(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	// The organization's catalog (its override: a Postgres read) is read
	// beside the lookups: the resources to look up are the base
	// catalog's (an override changes requirements only, and never makes
	// an entry an alternative), so the first call need not wait for it.
	type effective struct {
		cat *catalog.Catalog
		err error
	}
	catDone := make(chan effective, 1)
	go func() {
		cat, err := s.catalog(ctx, sc.Org)
		catDone <- effective{cat, err}
	}()
	sps := map[string]*microsoft.ServicePrincipal{}
	lookup := func(appID string) error {
		if _, seen := sps[appID]; seen {
			return nil
		}
		got, err := r.dir.GetServicePrincipalByAppID(ctx, appID)
		switch {
		case err == nil:
			sps[appID] = &got
		case microsoft.IsClass(err, mserr.ClassNotFound) || microsoft.IsClass(err, mserr.ClassNotReplicated):
			// Microsoft's own service principals are not new: a 404
			// is a product the tenant does not have, not lag.
			sps[appID] = nil
		default:
			return err
		}
		return nil
	}
	wanted := func(e catalog.Entry) bool {
		return e.Type == catalog.TypeApplication && e.Requirement != catalog.Alternative
	}
	for _, e := range s.baseCatalog().For(r.p.Kind, r.p.features()) {
		if !wanted(e) {
			continue
		}
		if err := lookup(e.ResourceAppID); err != nil {
			<-catDone
			return nil, err
		}
	}
	eff := <-catDone
	if eff.err != nil {
		return nil, eff.err
	}
	var out resourcesOut
	for _, e := range eff.cat.For(r.p.Kind, r.p.features()) {
		if !wanted(e) {
			continue
		}
		p := permission{ResourceAppID: e.ResourceAppID, Resource: e.ResourceName, Value: e.Value, Requirement: string(e.Requirement)}
		if err := lookup(e.ResourceAppID); err != nil {
			return nil, err
		}
		sp := sps[e.ResourceAppID]
		if sp == nil {
			p.Status = "not-licensed"
		} else {
			p.ResourceSP = sp.ObjectID
			p.Status = "unknown-role"
			for _, role := range sp.AppRoles {
				if role.Value == e.Value {
					p.AppRoleID, p.Status = role.ID, "available"
				}
			}
		}
		out.Permissions = append(out.Permissions, p)
	}
	return outputs(out)
}

// --- b. application --------------------------------------------------------

type applicationOut struct {
	ObjectID   string `json:"application_object_id"`
	AppID      string `json:"app_id"`
	UniqueName string `json:"unique_name"`
	Created    bool   `json:"created"`
}

// stepApplication upserts the application by its uniqueName (PATCH
// /applications(uniqueName=) with Prefer: create-if-missing): a re-run
// updates the same application, never a second one. It records the IDs on
// the integration row (client ID, application object ID).
func (s *Service) stepApplication(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var res resourcesOut
	if _, err := sc.Output(StepResources, &res); err != nil {
		return nil, err
	}
	byResource := map[string][]string{}
	var order []string
	for _, p := range res.Permissions {
		if p.Status != "available" {
			continue
		}
		if _, ok := byResource[p.ResourceAppID]; !ok {
			order = append(order, p.ResourceAppID)
		}
		byResource[p.ResourceAppID] = append(byResource[p.ResourceAppID], p.AppRoleID)
	}
	rra := make([]microsoft.ResourceAccess, 0, len(order))
	for _, id := range order {
		rra = append(rra, microsoft.ResourceAccess{ResourceAppID: id, AppRoleIDs: byResource[id]})
	}
	name := resource.Integration{Org: sc.Org, Tenant: r.p.Tenant, Integration: r.p.Integration}.String()
	app, created, err := r.dir.UpsertApplicationByUniqueName(ctx, r.p.UniqueName, microsoft.ApplicationSpec{
		DisplayName: r.p.DisplayName, RequiredResourceAccess: rra,
		Notes: "Managed by dzconnect for " + name + ". Do not edit; deprovision through dzconnect.",
	})
	if err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.Name(KindName, StepApplication, "after_call")) // test-only: made, not recorded
	appID, err1 := uuid.Parse(app.AppID)
	objID, err2 := uuid.Parse(app.ObjectID)
	if err1 != nil || err2 != nil {
		return nil, operation.Lag("the application's IDs are not readable yet")
	}
	if err := s.recordObjects(ctx, r, integration.ProvisionedObjects{
		ClientID: uuid.NullUUID{UUID: appID, Valid: true}, AppObjectID: uuid.NullUUID{UUID: objID, Valid: true},
	}); err != nil {
		return nil, err
	}
	return outputs(applicationOut{ObjectID: app.ObjectID, AppID: app.AppID, UniqueName: r.p.UniqueName, Created: created})
}

// --- c. service principal ----------------------------------------------------

type spOut struct {
	ObjectID string `json:"service_principal_object_id"`
}

// stepServicePrincipal upserts the application's service principal by
// appId (PATCH /servicePrincipals(appId=) with Prefer: create-if-missing:
// 201 creates it, 204 finds the existing one), so a re-run finds the first.
// "Not replicated yet" answers right after step b are retried by the
// operation framework with backoff.
func (s *Service) stepServicePrincipal(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var app applicationOut
	if _, err := sc.Output(StepApplication, &app); err != nil {
		return nil, err
	}
	sp, _, err := r.dir.UpsertServicePrincipal(ctx, app.AppID, r.p.DisplayName)
	if err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.Name(KindName, StepServicePrincipal, "after_call")) // test-only: made, not recorded
	id, err := uuid.Parse(sp.ObjectID)
	if err != nil {
		return nil, operation.Lag("the service principal's ID is not readable yet")
	}
	if err := s.recordObjects(ctx, r, integration.ProvisionedObjects{ServicePrincipal: uuid.NullUUID{UUID: id, Valid: true}}); err != nil {
		return nil, err
	}
	return outputs(spOut{ObjectID: sp.ObjectID})
}

// --- e. app role assignments -------------------------------------------------

type grantRef struct {
	Resource string `json:"resource"`
	Value    string `json:"value,omitempty"`
	ID       string `json:"assignment_id,omitempty"`
	Role     string `json:"app_role_id,omitempty"`
}

type permissionsOut struct {
	Granted     []grantRef `json:"granted,omitempty"`
	Existing    []grantRef `json:"already_granted,omitempty"`
	Extra       []grantRef `json:"extra,omitempty"`
	NotLicensed []grantRef `json:"not_licensed,omitempty"`
	UnknownRole []grantRef `json:"unknown_role,omitempty"`
}

// stepPermissions grants every available catalog permission to the
// service principal (the admin consent): the grants are listed first, and
// AssignAppRole takes "already exists" as success, so a re-run grants
// nothing twice. Grants the catalog does not ask for are reported as
// extra, never removed.
func (s *Service) stepPermissions(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var res resourcesOut
	var sp spOut
	if _, err := sc.Output(StepResources, &res); err != nil {
		return nil, err
	}
	if _, err := sc.Output(StepServicePrincipal, &sp); err != nil {
		return nil, err
	}
	have, err := r.dir.ListAppRoleAssignments(ctx, sp.ObjectID)
	if err != nil {
		return nil, err
	}
	key := func(resourceSP, role string) string { return strings.ToLower(resourceSP + "|" + role) }
	held := map[string]microsoft.AppRoleAssignment{}
	for _, a := range have {
		held[key(a.ResourceID, a.AppRoleID)] = a
	}
	var out permissionsOut
	wanted := map[string]bool{}
	for _, p := range res.Permissions {
		ref := grantRef{Resource: p.Resource, Value: p.Value}
		switch p.Status {
		case "not-licensed":
			out.NotLicensed = append(out.NotLicensed, ref)
			continue
		case "unknown-role":
			out.UnknownRole = append(out.UnknownRole, ref)
			continue
		}
		k := key(p.ResourceSP, p.AppRoleID)
		wanted[k] = true
		if a, ok := held[k]; ok {
			ref.ID = a.ID
			out.Existing = append(out.Existing, ref)
			continue
		}
		a, err := r.dir.AssignAppRole(ctx, p.ResourceSP, sp.ObjectID, p.AppRoleID)
		if err != nil {
			return nil, err
		}
		crashpoint.Hit(crashpoint.Name(KindName, StepPermissions, "after_call")) // test-only: some granted, none recorded
		ref.ID = a.ID
		out.Granted = append(out.Granted, ref)
	}
	for _, a := range have {
		if !wanted[key(a.ResourceID, a.AppRoleID)] {
			out.Extra = append(out.Extra, grantRef{Resource: a.ResourceID, Role: a.AppRoleID, ID: a.ID})
		}
	}
	return outputs(out)
}

// --- f. directory role ---------------------------------------------------------

type directoryRoleOut struct {
	Role           string `json:"role"`
	Assigned       bool   `json:"assigned"`
	CustomerAction string `json:"customer_action,omitempty"`
}

// stepDirectoryRole handles the Entra role a feature needs (Exchange:
// Security Reader). By design (docs/provisioning.md step f) the
// provisioner does not hold RoleManagement.ReadWrite.Directory, so this is
// a customer step: the role is looked up (a read, idempotent) and, when
// missing, the step records the exact action for a tenant administrator;
// the checks report it until it is done.
func (s *Service) stepDirectoryRole(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p Params
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	cat, err := s.catalog(ctx, sc.Org)
	if err != nil {
		return nil, err
	}
	role := directoryRole(cat, p)
	if role == nil {
		return nil, operation.Skip("no feature of this integration needs a directory role")
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var sp spOut
	if _, err := sc.Output(StepServicePrincipal, &sp); err != nil {
		return nil, err
	}
	have, err := r.dir.ListDirectoryRoleAssignments(ctx, sp.ObjectID)
	if err != nil {
		return nil, err
	}
	for _, a := range have {
		if strings.EqualFold(a.RoleDefinitionID, role.ID) {
			return outputs(directoryRoleOut{Role: role.Value, Assigned: true})
		}
	}
	return outputs(directoryRoleOut{Role: role.Value, CustomerAction: fmt.Sprintf(
		"A tenant administrator assigns the Microsoft Entra role %s (%s) to the service principal %s (Entra ID > Roles and administrators > %s > Add assignments).",
		role.Value, role.ID, sp.ObjectID, role.Value)})
}

// directoryRole is the Entra role cat asks for the integration's kind and
// features (nil: none).
func directoryRole(cat *catalog.Catalog, p Params) *catalog.Entry {
	for _, e := range cat.For(p.Kind, p.features()) {
		if e.Type == catalog.TypeDirectoryRole && (e.Feature == "" || slices.Contains(p.Features, e.Feature)) {
			return &e
		}
	}
	return nil
}

// --- g. Sentinel role ------------------------------------------------------------

type sentinelOut struct {
	Scope            string `json:"scope"`
	Role             string `json:"role"`
	RoleAssignmentID string `json:"role_assignment_id"`
	WorkspaceID      string `json:"workspace_id"`
}

// stepSentinelRole reads the workspace (its customerId, recorded on the
// integration) and assigns the Sentinel role to the service principal at
// the workspace's resource group, with a deterministic assignment name
// (PUT: a re-run writes the same assignment; one made by hand under
// another name is adopted) and principalType ServicePrincipal. A
// provisioner without the right to assign roles there ends the step with
// the exact role and scope the customer must grant.
func (s *Service) stepSentinelRole(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p Params
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	if p.Kind != integration.KindSentinel || p.Workspace == nil {
		return nil, operation.Skip("not a Sentinel integration")
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var sp spOut
	if _, err := sc.Output(StepServicePrincipal, &sp); err != nil {
		return nil, err
	}
	ws := *p.Workspace
	role := RoleDefinitions[p.Role]
	if role.ID == "" {
		role = RoleDefinitions[RoleReader]
	}
	customerID, err := r.dir.GetWorkspace(ctx, microsoft.Workspace{SubscriptionID: ws.SubscriptionID.String(), ResourceGroup: ws.ResourceGroup, Name: ws.Name})
	if err != nil {
		return nil, s.rbacRemedy(ctx, r, err, ws.Scope(), "read the workspace "+ws.ID())
	}
	wsID, err := uuid.Parse(customerID)
	if err != nil {
		return nil, operation.Fail(apperr.FailedPrecondition, "WORKSPACE_ID", "Check the workspace.", "the workspace has no readable workspace ID")
	}
	a, err := r.dir.CreateRoleAssignment(ctx, ws.Scope(), sp.ObjectID, role.ID)
	if err != nil {
		return nil, s.rbacRemedy(ctx, r, err, ws.Scope(), "assign "+role.Name)
	}
	crashpoint.Hit(crashpoint.Name(KindName, StepSentinelRole, "after_call")) // test-only: assigned, not recorded
	if err := s.recordObjects(ctx, r, integration.ProvisionedObjects{
		Sentinel: &integration.Sentinel{SubscriptionID: ws.SubscriptionID, ResourceGroup: ws.ResourceGroup, WorkspaceName: ws.Name, WorkspaceID: wsID},
	}); err != nil {
		return nil, err
	}
	return outputs(sentinelOut{Scope: ws.Scope(), Role: role.Name, RoleAssignmentID: a.ID, WorkspaceID: customerID})
}

// rbacRemedy turns ARM's refusal into the customer's action: the exact
// role and scope to grant the provisioner. ARM's refusal always says "If
// access was recently granted, please refresh your credentials", and
// Microsoft documents that role assignment changes can take up to 10
// minutes to apply (Azure RBAC troubleshooting, "Role assignment changes
// are not being detected"), so a refusal cannot tell a missing grant from
// one not applied yet: the step polls (operation.Poll) with backoff inside
// a bounded window (Deps.RBACWindow, from the first refusal), each look
// with a fresh token (a new session: reuse), the remedy already in the
// step's observation so the customer sees the fix at once; a grant made
// meanwhile lets the step succeed; at the window's end it fails with the
// remedy.
func (s *Service) rbacRemedy(ctx context.Context, r run, err error, scope, what string) error {
	var e *mserr.Error
	if !errors.As(err, &e) || e.Status != 403 {
		return err
	}
	who := "the provisioner (application " + r.provisioner + ")"
	if sp, gerr := r.dir.GetServicePrincipalByAppID(ctx, r.provisioner); gerr == nil {
		who = "the provisioner's service principal " + sp.ObjectID + " (application " + r.provisioner + ")"
	}
	remedy := fmt.Sprintf("Have an Owner of %s assign %s the role Role Based Access Control Administrator (f58310d9-a9f6-439a-9e8d-f62e7b41a168), constrained to the Microsoft Sentinel Reader, Responder and Log Analytics Reader roles (the condition in docs/provisioning.md), or User Access Administrator, at scope %s; then provision again.",
		scope, who, scope)
	window := s.rbacWindow()
	if window > 0 && !r.sc.PollExpired {
		return operation.Poll(rbacBackoff(window, r.sc.Polls), time.Now().Add(window),
			"Azure refused to %s at %s; looking again for up to %s (a role assignment can take minutes to apply). Remedy: %s",
			what, scope, window, remedy)
	}
	return operation.Fail(apperr.PermissionDenied, "permission-missing", remedy, "the provisioner may not %s at %s", what, scope)
}

// rbacRecheck is how long after a first refusal deprovisioning tries the
// Azure role assignment's deletion again.
const rbacRecheck = 10 * time.Second

// rbacBackoff is the wait before the next look in the RBAC window after
// polls looks: window/60 (at least 100 ms, at most 5 s), doubled per look,
// at most 30 s (the runner never looks earlier than its PollMin).
func rbacBackoff(window time.Duration, polls int) time.Duration {
	d := min(max(window/60, 100*time.Millisecond), 5*time.Second)
	for i := 0; i < polls && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// --- h. client secret ----------------------------------------------------------

type secretOut struct {
	Credential   string    `json:"credential"`
	KeyID        string    `json:"key_id"`
	Hint         string    `json:"hint,omitempty"`
	EndTime      time.Time `json:"end_time"`
	VaultVersion int64     `json:"vault_version"`
}

// stepClientSecret adds the integration's client secret. addPassword is
// not idempotent, so the step is made safe to repeat by its order and a
// tag:
//
//  1. The credential row this operation makes has a fixed ID
//     (CredentialID) and Vault path. If it is already recorded (a crash
//     after step 4, before the step's record), the step adopts it and
//     removes any other password tagged with this operation.
//  2. Otherwise every password tagged with this operation (PasswordTag) is
//     an orphan of an attempt that crashed between addPassword and the
//     credential row: no row points at its Vault value, so nothing uses
//     it. They are removed first.
//  3. addPassword with the tag (AddPassword itself removes a copy whose
//     answer was lost).
//  4. The secret goes to Vault (check-and-set; a version an earlier
//     attempt wrote is overwritten with a newer one), then one transaction
//     inserts the credential row and activates it with that version. If
//     Vault ultimately refuses, the new password is removed from Entra
//     before the step fails, so no secret exists only in Entra.
//
// So no secret is left orphaned in Entra and none is lost.
func (s *Service) stepClientSecret(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var pol policyOut
	if _, err := sc.Output(StepPolicy, &pol); err != nil {
		return nil, err
	}
	if pol.SecretsBlocked {
		return nil, operation.Skip("the tenant's policy does not allow client secrets; the certificate is the credential")
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var app applicationOut
	if _, err := sc.Output(StepApplication, &app); err != nil {
		return nil, err
	}
	tag, credID := PasswordTag(sc.Operation), CredentialID(sc.Operation)
	// 1. Already recorded: adopt. Only a later attempt can find the row:
	// the first attempt (Attempt 1: the runner commits each attempt's
	// number before the step runs, so no earlier run of this step
	// exists) has nothing to adopt.
	if sc.Attempt != 1 {
		in, err := s.integration(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, c := range in.Credentials {
			if c.ID == credID && c.State == integration.CredentialActive {
				if err := s.removeTagged(ctx, r, app.ObjectID, tag, c.KeyID.UUID.String()); err != nil {
					return nil, err
				}
				return outputs(secretOut{Credential: c.ID.String(), KeyID: c.KeyID.UUID.String(), Hint: c.Hint, EndTime: deref(c.EndTime), VaultVersion: c.SecretVersion})
			}
		}
	}
	// 2.–4. Orphans removed, the new password, Vault, then the row
	// (inserted and activated in one transaction: the one recording the
	// step's success).
	return s.addTaggedPassword(ctx, r, sc, StepClientSecret, app.ObjectID, r.p.Integration, pol.SecretLifetimeSeconds, true,
		func(ctx context.Context, tx uow.Tx, c integration.Credential, version int64) error {
			if _, err := s.d.Integrations.InsertCredential(ctx, tx, c); err != nil {
				return err
			}
			_, err := s.d.Integrations.ActivateCredential(ctx, tx, sc.Org, c.ID, version)
			return err
		})
}

// addTaggedPassword is steps 2 to 4 of a client-secret step (provisioning's
// stepClientSecret, rotation's rotateSecret), after the caller found no
// recorded credential to adopt (step 1):
//
//  2. every password tagged with this operation is an orphan of an attempt
//     that crashed before its row: removed;
//  3. addPassword with the tag and the lifetime;
//  4. Vault (check-and-set on the credential's own path), then record(c,
//     version) in one transaction; c is the pending credential row (its
//     SecretVersion left to record). Vault refusing removes the new
//     password from Entra before the step fails; a record that fails
//     leaves an orphan that a re-run removes (2). With inStepRecord,
//     that transaction is the runner's record of the step's success
//     (RecordWith): the row and the step's outputs commit together.
//
// Step 2 reads the passwords only on a later attempt: the first attempt
// of the step (sc.Attempt 1) is provably the first run of it in this
// operation (the runner commits each attempt's number before the step
// runs; a crash or a lost lease makes the next run attempt 2 or more), and
// the tag names the operation, so no password with it can exist yet.
//
// The crash points are <kind>:<step>:after_call and after_vault.
func (s *Service) addTaggedPassword(ctx context.Context, r run, sc operation.StepContext, step, appObjectID string, integrationID uuid.UUID,
	lifetimeSeconds int64, inStepRecord bool, record func(ctx context.Context, tx uow.Tx, c integration.Credential, version int64) error) (operation.Outputs, error) {
	tag, credID := PasswordTag(sc.Operation), CredentialID(sc.Operation)
	if sc.Attempt != 1 {
		if err := s.removeTagged(ctx, r, appObjectID, tag, ""); err != nil {
			return nil, err
		}
	}
	end := time.Now().Add(time.Duration(lifetimeSeconds) * time.Second)
	np, err := r.dir.AddPassword(ctx, appObjectID, tag, end)
	if err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.Name(sc.Kind, step, "after_call")) // test-only: the secret exists only in Entra and memory
	keyID, err := uuid.Parse(np.KeyID)
	if err != nil {
		s.discard(ctx, r, appObjectID, np.KeyID)
		return nil, operation.Retry("unknown", 0, "Entra returned a password without a key ID")
	}
	path := integration.CredentialSecretPath(sc.Org, integrationID, credID)
	version, err := integration.WriteSecret(ctx, s.d.Secrets, path, np.Secret, 0)
	if err != nil {
		s.discard(ctx, r, appObjectID, np.KeyID)
		return nil, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable), "storing the client secret in Vault failed; the new secret was removed from Entra")
	}
	crashpoint.Hit(crashpoint.Name(sc.Kind, step, "after_vault")) // test-only: in Entra and Vault, no row
	cend := np.End
	if cend.IsZero() {
		cend = end
	}
	c := integration.Credential{Org: sc.Org, Integration: integrationID, ID: credID, Type: integration.CredentialClientSecret,
		KeyID: uuid.NullUUID{UUID: keyID, Valid: true}, Hint: np.Hint, EndTime: &cend, SecretPath: path,
		Source: integration.SourceProvisioned, State: integration.CredentialPending}
	if start := np.Start; !start.IsZero() {
		c.StartTime = &start
	}
	write := func(ctx context.Context, tx uow.Tx) error { return record(ctx, tx, c, version) }
	if !inStepRecord || !sc.RecordWith(write) {
		if err := s.d.Tx.InTx(ctx, write); err != nil {
			return nil, err
		}
	}
	return outputs(secretOut{Credential: credID.String(), KeyID: np.KeyID, Hint: np.Hint, EndTime: cend, VaultVersion: version})
}

// removeTagged removes the application's passwords named tag, except keep.
func (s *Service) removeTagged(ctx context.Context, r run, appObjectID, tag, keep string) error {
	pws, err := r.dir.ListPasswords(ctx, appObjectID)
	if err != nil {
		return err
	}
	for _, p := range pws {
		if p.DisplayName == tag && !strings.EqualFold(p.KeyID, keep) {
			if err := r.dir.RemovePassword(ctx, appObjectID, p.KeyID); err != nil {
				return err
			}
		}
	}
	return nil
}

// discard removes a password that will not be recorded (best effort: a
// re-run removes it as an orphan otherwise).
func (s *Service) discard(ctx context.Context, r run, appObjectID, keyID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.dir.RemovePassword(ctx, appObjectID, keyID); err != nil {
		s.d.Log.WarnContext(ctx, "removing an unrecorded client secret failed; the step's re-run removes it", "operation", r.sc.Operation, "error", err)
	}
}

// --- i. certificate ----------------------------------------------------------------

type certificateOut struct {
	Thumbprint string `json:"thumbprint"`
	Added      bool   `json:"added"`
}

// stepCertificate registers the certificate as a key credential, keeping
// the application's other keys. Idempotent: the key's display name carries
// the thumbprint, and a key with it already present is success; the PATCH
// sends the whole list.
func (s *Service) stepCertificate(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p Params
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	if p.CertificatePEM == "" {
		return nil, operation.Skip("no certificate given")
	}
	cert, err := ParseCertificatePEM(p.CertificatePEM)
	if err != nil {
		return nil, operation.Fail(apperr.InvalidArgument, "INVALID_CERTIFICATE", "Provision again with a valid certificate.", "certificate_pem %s", err)
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	var app applicationOut
	if _, err := sc.Output(StepApplication, &app); err != nil {
		return nil, err
	}
	name := "dzconnect " + cert.Thumbprint
	got, err := r.dir.GetApplication(ctx, app.ObjectID)
	if err != nil {
		return nil, err
	}
	for _, k := range got.Keys {
		if k.DisplayName == name {
			return outputs(certificateOut{Thumbprint: cert.Thumbprint})
		}
	}
	if err := r.dir.UpdateKeyCredentials(ctx, app.ObjectID, []microsoft.KeyCredential{{DisplayName: name, Type: "AsymmetricX509Cert",
		Usage: "Verify", Key: cert.DER, Start: cert.NotBefore, End: cert.NotAfter}}, nil); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.Name(KindName, StepCertificate, "after_call")) // test-only: added, not recorded
	return outputs(certificateOut{Thumbprint: cert.Thumbprint, Added: true})
}

// --- j. verify ------------------------------------------------------------------------

type verifyOut struct {
	Outcome string `json:"outcome"`
	Summary string `json:"summary"`
	Check   string `json:"check"`
}

// stepVerify runs the integration's checks (fresh tokens each time) and
// records them, which sets the integration's state. While the outcome is
// "propagating" (expected inside the settle window after the grants and
// the new secret) the step polls (operation.Poll: every VerifyEvery, no
// attempt used, the observation shown by GetOperation) until the
// framework's poll deadline; healthy and degraded end the operation successfully
// (degraded with its reasons in the outputs); broken and blocked-by-policy
// fail it with the check's summary. Idempotent: a check only reads.
func (s *Service) stepVerify(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p Params
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	// The check reads Entra's grants with the operation's provisioner
	// session (its token is there): not the provisioner's credentials
	// again, nor a token request before the first read.
	if dir, _, ok := s.reuse(sc); ok && s.d.VerifyDirectory != nil {
		if vd := s.d.VerifyDirectory(dir); vd != nil {
			ctx = verify.WithDirectory(ctx, vd)
		}
	}
	pending, err := s.d.Checks.Prepare(ctx, sc.Org, p.Integration, verify.TriggerProvision)
	if err != nil {
		return nil, err
	}
	c := pending.Check
	out := verifyOut{Outcome: string(c.Outcome), Summary: c.Summary, Check: c.ID.String()}
	// A check that ends the step is recorded in the transaction that
	// records the step's success (RecordWith: the integration's state, the
	// check and the step commit together; a crash before leaves neither
	// and the step checks again); any other is recorded at once, so that
	// the integration shows it while the step polls or fails.
	ends := c.Outcome == integration.StateHealthy || c.Outcome == integration.StateDegraded
	if !ends || !sc.RecordWith(func(ctx context.Context, tx uow.Tx) error {
		_, err := s.d.Checks.CommitIn(ctx, tx, pending)
		return err
	}) {
		if _, err := s.d.Checks.Commit(ctx, pending); err != nil {
			return nil, err
		}
	}
	switch c.Outcome {
	case integration.StateHealthy, integration.StateDegraded:
		return outputs(out)
	case integration.StatePropagating, integration.StateUnverified, integration.StateProvisioning:
		if sc.PollExpired {
			return nil, operation.Fail(apperr.FailedPrecondition, "propagating",
				"See the check's findings (dzctl integration checks); the periodic checks keep watching it.",
				"still propagating when the verify step's window ended: %s", c.Summary)
		}
		// Not a failure: look again (no attempt used) until the checks
		// settle; a check stops saying "propagating" once the settle window
		// after the last change has passed, and the poll deadline (the
		// framework's window) bounds it regardless.
		return nil, operation.Poll(s.verifyEvery(), time.Time{}, "%s: %s", c.Outcome, c.Summary)
	case integration.StateBlockedByPolicy:
		return nil, operation.Fail(apperr.FailedPrecondition, "blocked-by-policy", "See the check's findings (dzctl integration checks).", "%s", c.Summary)
	default:
		return nil, operation.Fail(apperr.FailedPrecondition, "broken", "See the check's findings (dzctl integration checks).", "the integration does not work: %s", c.Summary)
	}
}

// result is the operation's result: the integration and its outcome.
func (s *Service) result(sc operation.StepContext) (any, error) {
	s.forget(sc.Operation)
	var p Params
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	var v verifyOut
	_, _ = sc.Output(StepVerify, &v)
	var app applicationOut
	_, _ = sc.Output(StepApplication, &app)
	var perms permissionsOut
	_, _ = sc.Output(StepPermissions, &perms)
	res := map[string]any{
		"integration": resource.Integration{Org: sc.Org, Tenant: p.Tenant, Integration: p.Integration}.String(),
		"state":       v.Outcome, "summary": v.Summary, "check": v.Check, "app_id": app.AppID,
	}
	// The permissions not granted because the tenant lacks their product
	// (item 2d), those the resource does not offer, and grants beyond the
	// catalog: the report names them, the rest of the provisioning stands.
	if len(perms.NotLicensed) > 0 {
		res["not_licensed"] = perms.NotLicensed
	}
	if len(perms.UnknownRole) > 0 {
		res["unknown_role"] = perms.UnknownRole
	}
	if len(perms.Extra) > 0 {
		res["extra"] = perms.Extra
	}
	return res, nil
}

// outputs turns a step's typed record into the framework's Outputs.
func outputs(v any) (operation.Outputs, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out operation.Outputs
	return out, json.Unmarshal(b, &out)
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
