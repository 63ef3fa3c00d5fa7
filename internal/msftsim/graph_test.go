package msftsim_test

import (
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithuniquename"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/rolemanagement"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

const (
	homeTenant   = "aaaaaaaa-0000-4000-8000-000000000001"
	graphAppID   = "00000003-0000-0000-c000-000000000000"
	securityRdr  = "5d6b6bb7-de71-4623-b4af-96380a352509"
	roleAuditLog = "b0afded3-3588-46d8-8b3d-9842eff778da"
	roleUserRead = "df021288-bdef-4463-88db-98f22de89214"
)

var provisionerRoles = []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
	"RoleManagement.ReadWrite.Directory", "Policy.Read.All"}

// provisioner registers the organization's multi-tenant app and consents
// it in the env's tenant; it returns its credentials there.
func (e *env) provisioner(roles []string, azure ...msftsim.AzureRole) (msftsim.AppCreds, string) {
	e.t.Helper()
	p, err := e.admin.RegisterProvisioner(homeTenant, msftsim.AppRequest{DisplayName: "Dropzone Provisioner"})
	if err != nil {
		e.t.Fatalf("RegisterProvisioner: %v", err)
	}
	sp, err := e.admin.Consent(e.tenant, p.ClientID, roles, azure...)
	if err != nil {
		e.t.Fatalf("Consent: %v", err)
	}
	p.TenantID = e.tenant
	return p, sp
}

func uniqueNamePatch(g *msgraphsdk.GraphServiceClient, t *testing.T, key string, upsert bool) (models.Applicationable, error) {
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	cfg := &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderPatchRequestConfiguration{}
	if upsert {
		h := abstractions.NewRequestHeaders()
		h.Add("Prefer", "create-if-missing")
		cfg.Headers = h
	}
	return g.ApplicationsWithUniqueName(ptr(key)).Patch(t.Context(), app, cfg)
}

func TestGraphProvisioningFlow(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	ctx := t.Context()

	// Without Prefer a missing app is 404; with it, 201 then 204.
	_, err := uniqueNamePatch(g, t, "dropzone-contoso", false)
	_ = odata(t, err, 404, "Request_ResourceNotFound")
	app, err := uniqueNamePatch(g, t, "dropzone-contoso", true)
	if err != nil || app == nil || app.GetAppId() == nil || *app.GetUniqueName() != "dropzone-contoso" {
		t.Fatalf("upsert create: %v %v", app, err)
	}
	again, err := uniqueNamePatch(g, t, "dropzone-contoso", true)
	if err != nil || again != nil {
		t.Fatalf("upsert existing: want 204 (nil, nil), got %v %v", again, err)
	}
	appID, objID := *app.GetAppId(), *app.GetId()

	// Every way to address it finds the same object.
	byUnique, err := g.ApplicationsWithUniqueName(ptr("dropzone-contoso")).Get(ctx, nil)
	if err != nil || *byUnique.GetId() != objID {
		t.Fatalf("get by uniqueName: %v", err)
	}
	byAppID, err := g.ApplicationsWithAppId(&appID).Get(ctx, nil)
	if err != nil || *byAppID.GetId() != objID {
		t.Fatalf("get by appId: %v", err)
	}
	byID, err := g.Applications().ByApplicationId(objID).Get(ctx, nil)
	if err != nil || *byID.GetAppId() != appID {
		t.Fatalf("get by id: %v", err)
	}
	list, err := g.Applications().Get(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Filter: ptr("appId eq '" + appID + "'")}})
	if err != nil || len(list.GetValue()) != 1 {
		t.Fatalf("filter by appId: %v %v", list, err)
	}

	_, err = g.Applications().ByApplicationId("not-a-guid").Get(ctx, nil)
	_ = odata(t, err, 400, "Request_BadRequest")

	// A plain POST creates another app (duplicates on retry, as in Graph).
	dup := models.NewApplication()
	dup.SetDisplayName(ptr("Dropzone AI"))
	if _, err := g.Applications().Post(ctx, dup, nil); err != nil {
		t.Fatalf("POST applications: %v", err)
	}

	// Service principal: created once, 409 the second time.
	spBody := models.NewServicePrincipal()
	spBody.SetAppId(&appID)
	sp, err := g.ServicePrincipals().Post(ctx, spBody, nil)
	if err != nil || *sp.GetAppId() != appID {
		t.Fatalf("create service principal: %v", err)
	}
	_, err = g.ServicePrincipals().Post(ctx, spBody, nil)
	if d := odata(t, err, 409, "Request_MultipleObjectsWithSameKeyValue").GetErrorEscaped().GetDetails(); len(d) != 1 || *d[0].GetTarget() != "servicePrincipalNames" {
		t.Errorf("conflict details %v", d)
	}
	sps, err := g.ServicePrincipals().Get(ctx, &serviceprincipals.ServicePrincipalsRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipals.ServicePrincipalsRequestBuilderGetQueryParameters{Filter: ptr("appId eq '" + appID + "'")}})
	if err != nil || len(sps.GetValue()) != 1 || *sps.GetValue()[0].GetId() != *sp.GetId() {
		t.Fatalf("filter service principals: %v", err)
	}
	gotSP, err := g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).Get(ctx, nil)
	if err != nil || *gotSP.GetAppId() != appID {
		t.Fatalf("get service principal: %v", err)
	}

	// Resolve Graph's app role IDs at run time, as dzconnect will.
	graphSP, err := g.ServicePrincipalsWithAppId(ptr(graphAppID)).Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{Select: []string{"id", "appRoles"}}})
	if err != nil {
		t.Fatalf("get Graph service principal: %v", err)
	}
	if graphSP.GetDisplayName() != nil {
		t.Errorf("$select leaked displayName")
	}
	roleIDs := map[string]uuid.UUID{}
	for _, r := range graphSP.GetAppRoles() {
		roleIDs[*r.GetValue()] = *r.GetId()
	}
	if roleIDs["AuditLog.Read.All"].String() != roleAuditLog || roleIDs["User.Read.All"].String() != roleUserRead {
		t.Fatalf("Graph app roles: %v", roleIDs)
	}

	// Secret.
	pwBody := applications.NewItemAddPasswordPostRequestBody()
	pc := models.NewPasswordCredential()
	pc.SetDisplayName(ptr("dzconnect"))
	pc.SetEndDateTime(ptr(t0.AddDate(0, 6, 0)))
	pwBody.SetPasswordCredential(pc)
	secret, err := g.Applications().ByApplicationId(objID).AddPassword().Post(ctx, pwBody, nil)
	if err != nil || secret.GetSecretText() == nil || len(*secret.GetSecretText()) != 40 || *secret.GetHint() != (*secret.GetSecretText())[:3] {
		t.Fatalf("addPassword: %v %v", secret, err)
	}
	if !secret.GetEndDateTime().Equal(t0.AddDate(0, 6, 0)) {
		t.Errorf("endDateTime %v", secret.GetEndDateTime())
	}

	// Admin consent: one assignment per permission.
	gspID := *graphSP.GetId()
	for _, role := range []string{"AuditLog.Read.All", "User.Read.All"} {
		a := models.NewAppRoleAssignment()
		a.SetPrincipalId(ptr(uuid.MustParse(*sp.GetId())))
		a.SetResourceId(ptr(uuid.MustParse(gspID)))
		a.SetAppRoleId(ptr(roleIDs[role]))
		got, err := g.ServicePrincipals().ByServicePrincipalId(gspID).AppRoleAssignedTo().Post(ctx, a, nil)
		if err != nil || got.GetId() == nil || *got.GetPrincipalType() != "ServicePrincipal" {
			t.Fatalf("appRoleAssignedTo %s: %v", role, err)
		}
		if role == "AuditLog.Read.All" {
			_, err = g.ServicePrincipals().ByServicePrincipalId(gspID).AppRoleAssignedTo().Post(ctx, a, nil)
			_ = odata(t, err, 400, "Request_BadRequest")
		}
	}
	held, err := g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).AppRoleAssignments().Get(ctx, nil)
	if err != nil || len(held.GetValue()) != 2 {
		t.Fatalf("appRoleAssignments: %v", err)
	}
	granted, err := g.ServicePrincipals().ByServicePrincipalId(gspID).AppRoleAssignedTo().Get(ctx, nil)
	if err != nil {
		t.Fatalf("appRoleAssignedTo list: %v", err)
	}
	var mine []string
	for _, a := range granted.GetValue() {
		if a.GetPrincipalId().String() == *sp.GetId() {
			mine = append(mine, *a.GetId())
		}
	}
	if len(mine) != 2 {
		t.Fatalf("assignments on Graph for the new SP: %d", len(mine))
	}

	// The new app can sign in with the new secret and carries the roles.
	newCred := e.secretCred(e.tenant, appID, *secret.GetSecretText())
	if got := roleList(claims(t, e.mustToken(newCred, msftsim.ResourceGraph))); !slices.Equal(got, []string{"AuditLog.Read.All", "User.Read.All"}) {
		t.Fatalf("roles of provisioned app: %v", got)
	}

	// Certificate credential via PATCH keyCredentials, then a cert sign-in.
	cert, key, _ := newCert(t, t0.AddDate(1, 0, 0))
	kc := models.NewKeyCredential()
	kc.SetKey(cert.Raw)
	kc.SetTypeEscaped(ptr("AsymmetricX509Cert"))
	kc.SetUsage(ptr("Verify"))
	kc.SetDisplayName(ptr("CN=contoso.dropzone.app"))
	patch := models.NewApplication()
	patch.SetKeyCredentials([]models.KeyCredentialable{kc})
	if _, err := g.Applications().ByApplicationId(objID).Patch(ctx, patch, nil); err != nil {
		t.Fatalf("PATCH keyCredentials: %v", err)
	}
	withKey, err := g.Applications().ByApplicationId(objID).Get(ctx, nil)
	if err != nil || len(withKey.GetKeyCredentials()) != 1 || len(withKey.GetKeyCredentials()[0].GetCustomKeyIdentifier()) != 20 {
		t.Fatalf("keyCredentials after PATCH: %v", err)
	}
	e.mustToken(e.certCred(e.tenant, appID, cert, key), msftsim.ResourceGraph)

	// Entra role for Exchange, then list with a filter.
	ra := models.NewUnifiedRoleAssignment()
	ra.SetPrincipalId(sp.GetId())
	ra.SetRoleDefinitionId(ptr(securityRdr))
	ra.SetDirectoryScopeId(ptr("/"))
	if _, err := g.RoleManagement().Directory().RoleAssignments().Post(ctx, ra, nil); err != nil {
		t.Fatalf("roleAssignments POST: %v", err)
	}
	ras, err := g.RoleManagement().Directory().RoleAssignments().Get(ctx, &rolemanagement.DirectoryRoleAssignmentsRequestBuilderGetRequestConfiguration{
		QueryParameters: &rolemanagement.DirectoryRoleAssignmentsRequestBuilderGetQueryParameters{Filter: ptr("principalId eq '" + *sp.GetId() + "'")}})
	if err != nil || len(ras.GetValue()) != 1 || *ras.GetValue()[0].GetRoleDefinitionId() != securityRdr {
		t.Fatalf("roleAssignments list: %v", err)
	}
	// Delete it: 204, then 404.
	raID := *ras.GetValue()[0].GetId()
	if err := g.RoleManagement().Directory().RoleAssignments().ByUnifiedRoleAssignmentId(raID).Delete(ctx, nil); err != nil {
		t.Fatalf("roleAssignments DELETE: %v", err)
	}
	err = g.RoleManagement().Directory().RoleAssignments().ByUnifiedRoleAssignmentId(raID).Delete(ctx, nil)
	_ = odata(t, err, 404, "Request_ResourceNotFound")

	// Remove the secret: it stops working.
	rm := applications.NewItemRemovePasswordPostRequestBody()
	rm.SetKeyId(secret.GetKeyId())
	if err := g.Applications().ByApplicationId(objID).RemovePassword().Post(ctx, rm, nil); err != nil {
		t.Fatalf("removePassword: %v", err)
	}
	_, err = e.token(e.secretCred(e.tenant, appID, *secret.GetSecretText()), msftsim.ResourceGraph)
	aadsts(t, err, 7000215)

	// Revoke one grant, then delete the app (its service principal goes too).
	if err := g.ServicePrincipals().ByServicePrincipalId(gspID).AppRoleAssignedTo().ByAppRoleAssignmentId(mine[0]).Delete(ctx, nil); err != nil {
		t.Fatalf("delete assignment: %v", err)
	}
	held, _ = g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).AppRoleAssignments().Get(ctx, nil)
	if len(held.GetValue()) != 1 {
		t.Fatalf("after revoke: %d assignments", len(held.GetValue()))
	}
	if err := g.Applications().ByApplicationId(objID).Delete(ctx, nil); err != nil {
		t.Fatalf("delete app: %v", err)
	}
	_, err = g.Applications().ByApplicationId(objID).Get(ctx, nil)
	_ = odata(t, err, 404, "Request_ResourceNotFound")
	_, err = g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).Get(ctx, nil)
	_ = odata(t, err, 404, "Request_ResourceNotFound")
}

func TestGraphPolicyLimitsSecrets(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	created, err := g.Applications().Post(ctx, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{PasswordMaxLifetime: "P90D"}); err != nil {
		t.Fatal(err)
	}
	pol, err := g.Policies().DefaultAppManagementPolicy().Get(ctx, nil)
	if err != nil {
		t.Fatalf("defaultAppManagementPolicy: %v", err)
	}
	pw := pol.GetApplicationRestrictions().GetPasswordCredentials()
	if !*pol.GetIsEnabled() || len(pw) != 1 || *pw[0].GetRestrictionType() != models.PASSWORDLIFETIME_APPCREDENTIALRESTRICTIONTYPE ||
		pw[0].GetMaxLifetime() == nil || pw[0].GetMaxLifetime().GetWeeks()*7+pw[0].GetMaxLifetime().GetDays() != 90 {
		var lt, ml string
		if len(pw) == 1 && pw[0].GetMaxLifetime() != nil {
			ml = pw[0].GetMaxLifetime().String()
		}
		if len(pw) == 1 && pw[0].GetRestrictionType() != nil {
			lt = pw[0].GetRestrictionType().String()
		}
		t.Fatalf("policy restrictions: %d %q %q enabled=%v", len(pw), lt, ml, pol.GetIsEnabled())
	}
	add := func(end *time.Time) error {
		body := applications.NewItemAddPasswordPostRequestBody()
		pc := models.NewPasswordCredential()
		pc.SetEndDateTime(end)
		body.SetPasswordCredential(pc)
		_, err := g.Applications().ByApplicationId(*created.GetId()).AddPassword().Post(ctx, body, nil)
		return err
	}
	oe := odata(t, add(nil), 400, "CredentialInvalidLifetimeAsPerAppPolicy") // default 2 years
	if d := oe.GetErrorEscaped().GetDetails(); len(d) != 1 || *d[0].GetCode() != "InvalidKeyEndDate" {
		t.Errorf("details: %v", d)
	}
	if err := add(ptr(t0.AddDate(0, 0, 60))); err != nil {
		t.Fatalf("secret within policy: %v", err)
	}
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{BlockPasswordAddition: true}); err != nil {
		t.Fatal(err)
	}
	_ = odata(t, add(ptr(t0.AddDate(0, 0, 60))), 400, "CredentialTypeNotAllowedAsPerAppPolicy")
}

func TestGraphOwnedByLimitsToOwnApps(t *testing.T) {
	e := newEnv(t)
	other := e.app()
	p, _ := e.provisioner([]string{"Application.ReadWrite.OwnedBy"})
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	mine, err := g.Applications().Post(ctx, app, nil)
	if err != nil {
		t.Fatalf("create with OwnedBy: %v", err)
	}
	body := applications.NewItemAddPasswordPostRequestBody()
	body.SetPasswordCredential(models.NewPasswordCredential())
	if _, err := g.Applications().ByApplicationId(*mine.GetId()).AddPassword().Post(ctx, body, nil); err != nil {
		t.Fatalf("addPassword on own app: %v", err)
	}
	_, err = g.Applications().ByApplicationId(other.ObjectID).AddPassword().Post(ctx, body, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")
}

func TestGraphAuthorizationAndTokenValidation(t *testing.T) {
	e := newEnv(t, func(o *msftsim.Options) { o.StrictTokenExpiry = true })
	c := e.app() // consented to nothing
	g := e.graph(e.credFor(c))
	ctx := t.Context()
	_, err := g.Users().Get(ctx, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")
	app := models.NewApplication()
	app.SetDisplayName(ptr("x"))
	_, err = g.Applications().Post(ctx, app, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")
	_, err = g.Policies().DefaultAppManagementPolicy().Get(ctx, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")

	// A token for another resource is refused; so is an expired one.
	armTok := e.mustToken(e.credFor(c), msftsim.ResourceARM)
	st, _, body := e.do("GET", e.ep.Graph+"/users", armTok, nil)
	if st != 401 || errCode(body) != "InvalidAuthenticationToken" {
		t.Fatalf("wrong audience: %d %v", st, body)
	}
	reader := e.app("User.Read.All")
	rg := e.graph(e.credFor(reader))
	if _, err := rg.Users().Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.admin.AdvanceClock(2 * time.Hour) // the cached token is now expired on the sim clock
	_, err = rg.Users().Get(ctx, nil)
	_ = odata(t, err, 401, "InvalidAuthenticationToken")
}

func TestGraphKeyCredentialResendKeepsKey(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	created, _ := g.Applications().Post(ctx, app, nil)
	cert1, _, _ := newCert(t, t0.AddDate(1, 0, 0))
	cert2, key2, _ := newCert(t, t0.AddDate(1, 0, 0))
	kc := models.NewKeyCredential()
	kc.SetKey(cert1.Raw)
	kc.SetTypeEscaped(ptr("AsymmetricX509Cert"))
	kc.SetUsage(ptr("Verify"))
	patch := models.NewApplication()
	patch.SetKeyCredentials([]models.KeyCredentialable{kc})
	if _, err := g.Applications().ByApplicationId(*created.GetId()).Patch(ctx, patch, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := g.Applications().ByApplicationId(*created.GetId()).Get(ctx, nil)
	existing := got.GetKeyCredentials()[0] // comes back without its key
	if existing.GetKey() != nil {
		t.Fatalf("GET returned the key")
	}
	kc2 := models.NewKeyCredential()
	kc2.SetKey(cert2.Raw)
	kc2.SetTypeEscaped(ptr("AsymmetricX509Cert"))
	kc2.SetUsage(ptr("Verify"))
	patch.SetKeyCredentials([]models.KeyCredentialable{existing, kc2})
	if _, err := g.Applications().ByApplicationId(*created.GetId()).Patch(ctx, patch, nil); err != nil {
		t.Fatalf("PATCH with resent key: %v", err)
	}
	got, _ = g.Applications().ByApplicationId(*created.GetId()).Get(ctx, nil)
	if n := len(got.GetKeyCredentials()); n != 2 {
		t.Fatalf("%d key credentials", n)
	}
	if base64.StdEncoding.EncodeToString(got.GetKeyCredentials()[0].GetCustomKeyIdentifier()) == "" {
		t.Fatal("no thumbprint")
	}
	spBody := models.NewServicePrincipal()
	spBody.SetAppId(created.GetAppId())
	if _, err := g.ServicePrincipals().Post(ctx, spBody, nil); err != nil {
		t.Fatal(err)
	}
	e.mustToken(e.certCred(e.tenant, *created.GetAppId(), cert2, key2), msftsim.ResourceGraph)
}

// By default advancing the clock does not invalidate tokens the client
// still caches (MSAL refreshes by wall time), so clock-driven scenarios such
// as secret rotation keep working.
func TestClockAdvanceKeepsCachedTokensUsable(t *testing.T) {
	e := newEnv(t)
	g := e.graph(e.credFor(e.app("User.Read.All")))
	if _, err := g.Users().Get(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	e.admin.AdvanceClock(30 * 24 * time.Hour)
	if _, err := g.Users().Get(t.Context(), nil); err != nil {
		t.Fatalf("cached token after a clock advance: %v", err)
	}
}
