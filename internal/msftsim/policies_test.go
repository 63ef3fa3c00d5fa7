package msftsim_test

import (
	"strings"
	"testing"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// TestGraphAppSpecificPolicies: app-specific app-management policies
// (list, appliesTo, Policy.Read.ApplicationConfiguration accepted,
// appliesTo needing Application.Read.All too), enforcement (an assigned
// policy replaces the tenant default for its app; state disabled is not
// enforced; "created on or after"; asymmetricKeyLifetime), all through the
// Graph SDK.
func TestGraphAppSpecificPolicies(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner([]string{"Application.ReadWrite.OwnedBy", "Application.Read.All", "Policy.Read.ApplicationConfiguration"})
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	newApp := func() models.Applicationable {
		a := models.NewApplication()
		a.SetDisplayName(ptr("Dropzone AI"))
		got, err := g.Applications().Post(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	restricted, other := newApp(), newApp()
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{PasswordMaxLifetime: "P90D"}); err != nil {
		t.Fatal(err)
	}
	id, err := e.admin.AddAppPolicy(e.tenant, msftsim.AppPolicySpec{DisplayName: "No secrets", PolicySpec: msftsim.PolicySpec{
		BlockPasswordAddition: true, KeyMaxLifetime: "P30D"}, AppliesTo: []string{*restricted.GetId()}})
	if err != nil {
		t.Fatal(err)
	}

	list, err := g.Policies().AppManagementPolicies().Get(ctx, nil)
	if err != nil {
		t.Fatalf("appManagementPolicies: %v", err)
	}
	if len(list.GetValue()) != 1 || *list.GetValue()[0].GetId() != id || !*list.GetValue()[0].GetIsEnabled() {
		t.Fatalf("policies: %v", list.GetValue())
	}
	r := list.GetValue()[0].GetRestrictions()
	if pw := r.GetPasswordCredentials(); len(pw) != 1 || *pw[0].GetRestrictionType() != models.PASSWORDADDITION_APPCREDENTIALRESTRICTIONTYPE ||
		*pw[0].GetState() != models.ENABLED_APPMANAGEMENTRESTRICTIONSTATE {
		t.Fatalf("password restrictions %v", pw)
	}
	if kc := r.GetKeyCredentials(); len(kc) != 1 || *kc[0].GetRestrictionType() != models.ASYMMETRICKEYLIFETIME_APPKEYCREDENTIALRESTRICTIONTYPE ||
		kc[0].GetMaxLifetime().GetDays() != 30 {
		t.Fatalf("key restrictions %v", kc)
	}
	one, err := g.Policies().AppManagementPolicies().ByAppManagementPolicyId(id).Get(ctx, nil)
	if err != nil || *one.GetDisplayName() != "No secrets" {
		t.Fatalf("appManagementPolicy get: %v %v", one, err)
	}
	applies, err := g.Policies().AppManagementPolicies().ByAppManagementPolicyId(id).AppliesTo().Get(ctx, nil)
	if err != nil {
		t.Fatalf("appliesTo: %v", err)
	}
	if v := applies.GetValue(); len(v) != 1 || *v[0].GetId() != *restricted.GetId() {
		t.Fatalf("appliesTo %v", v)
	}
	// appliesTo needs Application.Read.All besides the policy permission.
	policyOnly, _ := e.provisioner([]string{"Policy.Read.All"})
	_, err = e.graph(e.credFor(policyOnly)).Policies().AppManagementPolicies().ByAppManagementPolicyId(id).AppliesTo().Get(ctx, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")

	add := func(app models.Applicationable, end time.Time) error {
		body := applications.NewItemAddPasswordPostRequestBody()
		pc := models.NewPasswordCredential()
		pc.SetEndDateTime(&end)
		body.SetPasswordCredential(pc)
		_, err := g.Applications().ByApplicationId(*app.GetId()).AddPassword().Post(ctx, body, nil)
		return err
	}
	// The assigned policy replaces the default for its app only.
	oe := odata(t, add(restricted, t0.AddDate(0, 0, 60)), 400, "CredentialTypeNotAllowedAsPerAppPolicy")
	if !strings.Contains(msgOf(oe), id) {
		t.Errorf("refusal names %q, want the policy %s", msgOf(oe), id)
	}
	if err := add(other, t0.AddDate(0, 0, 60)); err != nil {
		t.Fatalf("the other app, within the default: %v", err)
	}
	_ = odata(t, add(other, t0.AddDate(0, 0, 200)), 400, "CredentialInvalidLifetimeAsPerAppPolicy")

	// asymmetricKeyLifetime: a certificate valid longer than 30 days is refused.
	cert, _, _ := newCert(t, t0.AddDate(1, 0, 0))
	kc := models.NewKeyCredential()
	kc.SetKey(cert.Raw)
	kc.SetTypeEscaped(ptr("AsymmetricX509Cert"))
	kc.SetUsage(ptr("Verify"))
	upd := models.NewApplication()
	upd.SetKeyCredentials([]models.KeyCredentialable{kc})
	_, err = g.Applications().ByApplicationId(*restricted.GetId()).Patch(ctx, upd, nil)
	_ = odata(t, err, 400, "CredentialInvalidLifetimeAsPerAppPolicy")
	if _, err := g.Applications().ByApplicationId(*other.GetId()).Patch(ctx, upd, nil); err != nil {
		t.Fatalf("a certificate on the app without the key restriction: %v", err)
	}

	// state disabled: listed, not enforced.
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{BlockPasswordAddition: true, PasswordAdditionDisabled: true}); err != nil {
		t.Fatal(err)
	}
	def, err := g.Policies().DefaultAppManagementPolicy().Get(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pw := def.GetApplicationRestrictions().GetPasswordCredentials(); len(pw) != 1 || *pw[0].GetState() != models.DISABLED_APPMANAGEMENTRESTRICTIONSTATE {
		t.Fatalf("default restrictions %v", pw)
	}
	if err := add(other, t0.AddDate(0, 0, 60)); err != nil {
		t.Fatalf("a disabled restriction refused: %v", err)
	}
	// Created on or after the restriction's date: an app created at that
	// very instant is restricted.
	created := *other.GetCreatedDateTime()
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{BlockPasswordAddition: true, RestrictForAppsCreatedAfter: created}); err != nil {
		t.Fatal(err)
	}
	_ = odata(t, add(other, t0.AddDate(0, 0, 60)), 400, "CredentialTypeNotAllowedAsPerAppPolicy")
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{BlockPasswordAddition: true, RestrictForAppsCreatedAfter: created.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := add(other, t0.AddDate(0, 0, 60)); err != nil {
		t.Fatalf("an app created before the restriction's date: %v", err)
	}
}

// TestGraphServicePrincipalUpsert: PATCH /servicePrincipals(appId=) with
// Prefer: create-if-missing is 201 with the service principal, then 204;
// without the header a missing one is 404; right after the app, replication
// lag answers 400 with the NoBackingApplicationObject detail (and 403 to an
// OwnedBy caller, as POST).
func TestGraphServicePrincipalUpsert(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner([]string{"Application.ReadWrite.OwnedBy"})
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	a := models.NewApplication()
	a.SetDisplayName(ptr("Dropzone AI"))
	app, err := g.Applications().Post(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	upsert := func(appID string, prefer bool) (models.ServicePrincipalable, error) {
		h := abstractions.NewRequestHeaders()
		if prefer {
			h.Add("Prefer", "create-if-missing")
		}
		sp := models.NewServicePrincipal()
		sp.SetDisplayName(ptr("Dropzone AI"))
		return g.ServicePrincipalsWithAppId(&appID).Patch(ctx, sp, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderPatchRequestConfiguration{Headers: h})
	}
	_, err = upsert(*app.GetAppId(), false)
	_ = odata(t, err, 404, "Request_ResourceNotFound")
	sp, err := upsert(*app.GetAppId(), true)
	if err != nil || sp == nil || sp.GetId() == nil || *sp.GetAppId() != *app.GetAppId() {
		t.Fatalf("upsert create: %v %v", sp, err)
	}
	again, err := upsert(*app.GetAppId(), true)
	if err != nil || again != nil {
		t.Fatalf("upsert of an existing service principal: %v %v (want 204)", again, err)
	}
	if n, _ := e.admin.ServicePrincipalsOf(e.tenant, *app.GetAppId()); n != 1 {
		t.Fatalf("%d service principals", n)
	}

	// Lag: the new app is not there yet for the service principal.
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Rule: faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}}})
	all, _ := e.provisioner([]string{"Application.ReadWrite.All"})
	ga := e.graph(e.credFor(all))
	lagging, err := ga.Applications().Post(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := abstractions.NewRequestHeaders()
	h.Add("Prefer", "create-if-missing")
	_, err = ga.ServicePrincipalsWithAppId(lagging.GetAppId()).Patch(ctx, models.NewServicePrincipal(),
		&serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderPatchRequestConfiguration{Headers: h})
	oe := odata(t, err, 400, "Request_BadRequest")
	if d := oe.GetErrorEscaped().GetDetails(); len(d) != 1 || *d[0].GetCode() != "NoBackingApplicationObject" || *d[0].GetTarget() != "appId" {
		t.Fatalf("lag details %v", d)
	}
}

// TestGraphAppRoleAssignedToNeedsApplicationRead: granting an app role
// takes AppRoleAssignment.ReadWrite.All and Application.Read.All.
func TestGraphAppRoleAssignedToNeedsApplicationRead(t *testing.T) {
	e := newEnv(t)
	c := e.app()
	graphSP, ok := e.admin.ServicePrincipalID(e.tenant, "00000003-0000-0000-c000-000000000000")
	if !ok {
		t.Fatal("no Microsoft Graph service principal")
	}
	for _, tc := range []struct {
		roles []string
		want  int
	}{
		{[]string{"AppRoleAssignment.ReadWrite.All"}, 403},
		{[]string{"AppRoleAssignment.ReadWrite.All", "Application.Read.All"}, 201},
	} {
		p, _ := e.provisioner(tc.roles)
		tok := e.mustToken(e.credFor(p), "https://graph.microsoft.com")
		status, _, body := e.do("POST", e.ep.Graph+"/servicePrincipals/"+graphSP+"/appRoleAssignedTo", tok, map[string]any{
			"principalId": c.SPObjectID, "resourceId": graphSP, "appRoleId": "df021288-bdef-4463-88db-98f22de89214"})
		if status != tc.want {
			t.Errorf("roles %v: %d %v, want %d", tc.roles, status, body, tc.want)
		}
	}
}
