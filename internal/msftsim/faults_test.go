package msftsim_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

func routeFaults(route string, r faults.Rule) faults.Config {
	return faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{route: r}}}
}

func TestThrottleRetryAfterAndEarlyRetries(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	g := e.graph(e.credFor(c))
	e.admin.SetFaults(routeFaults("graph.users.list", faults.Rule{Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 1}}))
	// The SDK's retry handler waits Retry-After and succeeds.
	if _, err := g.Users().Get(t.Context(), nil); err != nil {
		t.Fatalf("SDK after 429: %v", err)
	}
	cnt := e.admin.Count("graph.users.list")
	if cnt.Statuses[429] != 1 || cnt.Statuses[200] != 1 || cnt.Faulted[faults.KindThrottle] != 1 {
		t.Fatalf("counters %+v", cnt)
	}
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("a client that waited Retry-After counted as early: %d", n)
	}
	// A client that does not wait is answered 429 again and counted.
	e.admin.SetFaults(routeFaults("graph.users.list", faults.Rule{Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 30}}))
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	st, hdr, body := e.do("GET", e.ep.Graph+"/users", tok, nil)
	if st != 429 || hdr.Get("Retry-After") != "30" || errCode(body) != "TooManyRequests" || hdr.Get("x-ms-throttle-scope") == "" {
		t.Fatalf("429: %d %v %v", st, hdr, body)
	}
	st, hdr, _ = e.do("GET", e.ep.Graph+"/users", tok, nil)
	if st != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("early retry answered %d", st)
	}
	_, _, _ = e.do("GET", e.ep.Graph+"/users", tok, nil) // the same client, early again
	if got := e.admin.EarlyRetries()["graph.users.list"]; got != 2 {
		t.Fatalf("early retries %d, want 2", got)
	}
	if got := e.admin.EarlyRetryClients()["graph.users.list"]; got != 1 {
		t.Fatalf("early clients %d, want 1", got)
	}
	log := e.admin.Requests(1) // the latest early retry
	if len(log) != 1 || log[0].Fault != faults.KindEarlyRetry || log[0].Client != c.ClientID || log[0].Tenant != e.tenant || log[0].RequestID == "" {
		t.Fatalf("request log %+v", log)
	}
}

func TestServerErrorsRetriedOrSurfaced(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	g := e.graph(e.credFor(c))
	users, _ := e.admin.Tenant(e.tenant)
	_ = users
	e.admin.SetFaults(routeFaults("graph.users.*", faults.Rule{ServerErrors: &faults.ServerErrors{Every: 1, Count: 1, Status: 503}}))
	if _, err := g.Users().Get(t.Context(), nil); err != nil {
		t.Fatalf("SDK after one 503: %v", err)
	}
	if cnt := e.admin.Count("graph.users.list"); cnt.Statuses[503] != 1 || cnt.Statuses[200] != 1 {
		t.Fatalf("counters %+v", cnt)
	}
	e.admin.SetFaults(routeFaults("graph.users.list", faults.Rule{ServerErrors: &faults.ServerErrors{Every: 1, Status: 500}}))
	_, err := g.Users().Get(t.Context(), nil)
	_ = odata(t, err, 500, "serviceNotAvailable")
}

func TestLatencyInjected(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	e.admin.SetFaults(faults.Config{Tenants: map[string]faults.Scope{e.tenant: {Rule: faults.Rule{
		Latency: &faults.Latency{Min: faults.Duration(40 * time.Millisecond), Max: faults.Duration(40 * time.Millisecond)}}}}})
	start := time.Now()
	if st, _, _ := e.do("GET", e.ep.Graph+"/users", tok, nil); st != 200 {
		t.Fatalf("status %d", st)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("answered in %v, latency not applied", d)
	}
}

func TestPerTenantFaults(t *testing.T) {
	e := newEnv(t)
	other, _ := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Fabrikam"})
	a := e.app("User.Read.All")
	b, _ := e.admin.CreateApp(other.ID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: []string{"User.Read.All"}})
	e.admin.SetFaults(faults.Config{Tenants: map[string]faults.Scope{other.ID: {Rule: faults.Rule{
		Throttle: &faults.Throttle{Every: 1, RetryAfterSeconds: 5}}}}})
	if st, _, _ := e.do("GET", e.ep.Graph+"/users", e.mustToken(e.credFor(a), msftsim.ResourceGraph), nil); st != 200 {
		t.Fatalf("unfaulted tenant: %d", st)
	}
	// The throttled tenant's token request itself is throttled too.
	_, err := e.token(e.credFor(b), msftsim.ResourceGraph)
	aadsts(t, err, 90055)
}

func TestObjectLagHidesNewAppForReads(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	e.admin.SetFaults(routeFaults("graph.applications.create", faults.Rule{ObjectLag: &faults.Lag{Reads: 2}}))
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	created, err := g.Applications().Post(ctx, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := g.Applications().ByApplicationId(*created.GetId()).Get(ctx, nil)
		_ = odata(t, err, 404, "Request_ResourceNotFound")
	}
	if _, err := g.Applications().ByApplicationId(*created.GetId()).Get(ctx, nil); err != nil {
		t.Fatalf("third read: %v", err)
	}
	// Creating the service principal of a lagging app: the real 400, then success.
	e.admin.SetFaults(routeFaults("graph.applications.create", faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}))
	created, _ = g.Applications().Post(ctx, app, nil)
	sp := models.NewServicePrincipal()
	sp.SetAppId(created.GetAppId())
	_, err = g.ServicePrincipals().Post(ctx, sp, nil)
	if oe := odata(t, err, 400, "Request_BadRequest"); !strings.Contains(msgOf(oe), "does not reference a valid application object") {
		t.Fatalf("message %q", msgOf(oe))
	}
	if _, err := g.ServicePrincipals().Post(ctx, sp, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestOwnedByServicePrincipalCreateDuringLag(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner([]string{"Application.ReadWrite.OwnedBy"})
	g := e.graph(e.credFor(p))
	e.admin.SetFaults(routeFaults("graph.applications.create", faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}))
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	created, err := g.Applications().Post(t.Context(), app, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := models.NewServicePrincipal()
	sp.SetAppId(created.GetAppId())
	_, err = g.ServicePrincipals().Post(t.Context(), sp, nil)
	if oe := odata(t, err, 403, "Authorization_RequestDenied"); !strings.Contains(msgOf(oe), "backing application of the service principal") {
		t.Fatalf("message %q", msgOf(oe))
	}
}

func TestObjectLagForDurationAndReferenceUpdate(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	target := e.app()
	e.admin.SetFaults(routeFaults("graph.servicePrincipals.create", faults.Rule{ObjectLag: &faults.Lag{For: faults.Duration(10 * time.Second)}}))
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	created, _ := g.Applications().Post(ctx, app, nil)
	spBody := models.NewServicePrincipal()
	spBody.SetAppId(created.GetAppId())
	sp, err := g.ServicePrincipals().Post(ctx, spBody, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).Get(ctx, nil)
	_ = odata(t, err, 404, "Request_ResourceNotFound")

	graphSP, _ := e.admin.ServicePrincipalID(e.tenant, graphAppID)
	a := models.NewAppRoleAssignment()
	a.SetPrincipalId(ptr(uuid.MustParse(*sp.GetId())))
	a.SetResourceId(ptr(uuid.MustParse(graphSP)))
	a.SetAppRoleId(ptr(uuid.MustParse(roleUserRead)))
	_, err = g.ServicePrincipals().ByServicePrincipalId(graphSP).AppRoleAssignedTo().Post(ctx, a, nil)
	if oe := odata(t, err, 400, "Request_BadRequest"); msgOf(oe) != "Not a valid reference update." {
		t.Fatalf("message %q", msgOf(oe))
	}
	// ARM refuses the lagging principal unless principalType is given.
	armP, _ := e.provisioner(nil, msftsim.AzureRole{Scope: rgScope(), Role: "Owner"})
	tok := e.mustToken(e.credFor(armP), msftsim.ResourceARM)
	raURL := e.ep.ARM + rgScope() + "/providers/Microsoft.Authorization/roleAssignments/" + "1e1e1e1e-1111-4222-8333-444444444444" + apiVersion
	body := map[string]any{"properties": map[string]any{"roleDefinitionId": roleDef("8d289c81-5878-46d4-8554-54e1e3d8b5cb"), "principalId": *sp.GetId()}}
	st, _, got := e.do("PUT", raURL, tok, body)
	if st != 400 || errCode(got) != "PrincipalNotFound" {
		t.Fatalf("lagging principal: %d %v", st, got)
	}
	body["properties"].(map[string]any)["principalType"] = "ServicePrincipal"
	if st, _, got = e.do("PUT", raURL, tok, body); st != 201 {
		t.Fatalf("with principalType: %d %v", st, got)
	}

	e.admin.AdvanceClock(10 * time.Second)
	if _, err := g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).Get(ctx, nil); err != nil {
		t.Fatalf("after the lag: %v", err)
	}
	if _, err := g.ServicePrincipals().ByServicePrincipalId(graphSP).AppRoleAssignedTo().Post(ctx, a, nil); err != nil {
		t.Fatalf("assignment after the lag: %v", err)
	}
	_ = target
}

func TestUpsertDuringLagConflicts(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	e.admin.SetFaults(routeFaults("graph.applications.update", faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}))
	if app, err := uniqueNamePatch(g, t, "dz-lag", true); err != nil || app == nil {
		t.Fatalf("create: %v", err)
	}
	_, err := uniqueNamePatch(g, t, "dz-lag", true)
	_ = odata(t, err, 409, "Error_MsaAppDoesNotExist")
	if app, err := uniqueNamePatch(g, t, "dz-lag", true); err != nil || app != nil {
		t.Fatalf("after the lag: want 204, got %v %v", app, err)
	}
}

func TestSecretLag(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	c := e.app("User.Read.All")
	add := func() string {
		body := applications.NewItemAddPasswordPostRequestBody()
		body.SetPasswordCredential(models.NewPasswordCredential())
		pc, err := g.Applications().ByApplicationId(c.ObjectID).AddPassword().Post(t.Context(), body, nil)
		if err != nil {
			t.Fatal(err)
		}
		return *pc.GetSecretText()
	}
	e.admin.SetFaults(routeFaults("graph.applications.addPassword", faults.Rule{SecretLag: &faults.Lag{Reads: 1}}))
	s1 := add()
	_, err := e.token(e.secretCred(e.tenant, c.ClientID, s1), msftsim.ResourceGraph)
	aadsts(t, err, 7000215)
	e.mustToken(e.secretCred(e.tenant, c.ClientID, s1), msftsim.ResourceGraph)

	e.admin.SetFaults(routeFaults("graph.applications.addPassword", faults.Rule{SecretLag: &faults.Lag{For: faults.Duration(15 * time.Second)}}))
	s2 := add()
	_, err = e.token(e.secretCred(e.tenant, c.ClientID, s2), msftsim.ResourceGraph)
	aadsts(t, err, 7000215)
	e.admin.AdvanceClock(15 * time.Second)
	e.mustToken(e.secretCred(e.tenant, c.ClientID, s2), msftsim.ResourceGraph)
	// The old secret kept working throughout (overlap).
	e.mustToken(e.credFor(c), msftsim.ResourceGraph)
}

func TestConsentLagKeepsRolesOutOfTokens(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	c := e.app()
	e.admin.SetFaults(routeFaults("graph.appRoleAssignedTo.create", faults.Rule{ConsentLag: &faults.Lag{For: faults.Duration(30 * time.Second)}}))
	graphSP, _ := e.admin.ServicePrincipalID(e.tenant, graphAppID)
	a := models.NewAppRoleAssignment()
	a.SetPrincipalId(ptr(uuid.MustParse(c.SPObjectID)))
	a.SetResourceId(ptr(uuid.MustParse(graphSP)))
	a.SetAppRoleId(ptr(uuid.MustParse(roleUserRead)))
	if _, err := g.ServicePrincipals().ByServicePrincipalId(graphSP).AppRoleAssignedTo().Post(t.Context(), a, nil); err != nil {
		t.Fatal(err)
	}
	// Graph already lists the grant (the authoritative check) ...
	held, err := g.ServicePrincipals().ByServicePrincipalId(c.SPObjectID).AppRoleAssignments().Get(t.Context(), nil)
	if err != nil || len(held.GetValue()) != 1 {
		t.Fatalf("appRoleAssignments: %v", err)
	}
	// ... but tokens lack it until the lag passes.
	if got := roleList(claims(t, e.mustToken(e.credFor(c), msftsim.ResourceGraph))); len(got) != 0 {
		t.Fatalf("roles during consent lag: %v", got)
	}
	e.admin.AdvanceClock(30 * time.Second)
	if got := roleList(claims(t, e.mustToken(e.credFor(c), msftsim.ResourceGraph))); !slices.Equal(got, []string{"User.Read.All"}) {
		t.Fatalf("roles after lag: %v", got)
	}
}

func TestSecretExpiryFollowsSimClock(t *testing.T) {
	e := newEnv(t)
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", SecretLifetime: "24h", Roles: []string{"User.Read.All"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.SecretExpires.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("secret expires %v", c.SecretExpires)
	}
	e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	e.admin.AdvanceClock(25 * time.Hour)
	_, err = e.token(e.credFor(c), msftsim.ResourceGraph)
	aadsts(t, err, 7000222)
}

func TestRandomFaultsAreSeeded(t *testing.T) {
	run := func() ([]int, string) {
		e := newEnv(t, func(o *msftsim.Options) { o.Seed = 7 })
		c := e.app("User.Read.All")
		tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
		e.admin.SetFaults(routeFaults("graph.users.list", faults.Rule{ServerErrors: &faults.ServerErrors{Rate: 0.5, Status: 503}}))
		var out []int
		for range 20 {
			st, _, _ := e.do("GET", e.ep.Graph+"/users", tok, nil)
			out = append(out, st)
		}
		return out, e.tenant
	}
	a, ta := run()
	b, tb := run()
	if !slices.Equal(a, b) || ta != tb {
		t.Fatalf("same seed, different runs:\n%v %s\n%v %s", a, ta, b, tb)
	}
	if !slices.Contains(a, 503) || !slices.Contains(a, 200) {
		t.Fatalf("rate 0.5 gave %v", a)
	}
}

func TestCredentialConflictAndRemovedTenant(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	c := e.app("User.Read.All")
	e.admin.SetFaults(routeFaults("graph.applications.*", faults.Rule{CredentialConflicts: &faults.Injection{Every: 1, Count: 1}}))
	body := applications.NewItemAddPasswordPostRequestBody()
	body.SetPasswordCredential(models.NewPasswordCredential())
	_, err := g.Applications().ByApplicationId(c.ObjectID).AddPassword().Post(t.Context(), body, nil)
	if oe := odata(t, err, 400, "Request_BadRequest"); !strings.Contains(msgOf(oe), "concurrent requests being made to the tenant") {
		t.Fatalf("message %q", msgOf(oe))
	}
	if _, err := g.Applications().ByApplicationId(c.ObjectID).AddPassword().Post(t.Context(), body, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// A tenant that disappears answers AADSTS90002, and comes back intact.
	if err := e.admin.SetTenantRemoved(e.tenant, true); err != nil {
		t.Fatal(err)
	}
	_, err = e.token(e.credFor(c), msftsim.ResourceGraph)
	aadsts(t, err, 90002)
	_, err = g.Users().Get(t.Context(), nil) // a token issued before is refused too
	_ = odata(t, err, 401, "InvalidAuthenticationToken")
	_ = e.admin.SetTenantRemoved(e.tenant, false)
	e.mustToken(e.credFor(c), msftsim.ResourceGraph)
}

func TestNewAppLagFailsSignIn(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	e.admin.SetFaults(routeFaults("graph.servicePrincipals.create", faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}))
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	created, err := g.Applications().Post(t.Context(), app, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := models.NewServicePrincipal()
	sp.SetAppId(created.GetAppId())
	if _, err := g.ServicePrincipals().Post(t.Context(), sp, nil); err != nil {
		t.Fatal(err)
	}
	body := applications.NewItemAddPasswordPostRequestBody()
	body.SetPasswordCredential(models.NewPasswordCredential())
	pc, err := g.Applications().ByApplicationId(*created.GetId()).AddPassword().Post(t.Context(), body, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.token(e.secretCred(e.tenant, *created.GetAppId(), *pc.GetSecretText()), msftsim.ResourceGraph)
	aadsts(t, err, 700016)
	e.mustToken(e.secretCred(e.tenant, *created.GetAppId(), *pc.GetSecretText()), msftsim.ResourceGraph)
}

func TestThrottleBudgetHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	e.admin.SetFaults(routeFaults("graph.users.*", faults.Rule{Throttle: &faults.Throttle{Limit: 5, Window: faults.Duration(time.Hour)}}))
	var got []string
	for range 5 {
		st, hdr, _ := e.do("GET", e.ep.Graph+"/users", tok, nil)
		if st != 200 {
			t.Fatalf("within budget: %d", st)
		}
		got = append(got, hdr.Get("x-ms-throttle-limit-percentage"))
	}
	if !slices.Equal(got, []string{"", "", "", "0.8", "1.0"}) {
		t.Fatalf("x-ms-throttle-limit-percentage %q", got)
	}
	st, hdr, body := e.do("GET", e.ep.Graph+"/users", tok, nil)
	if st != 429 || errCode(body) != "TooManyRequests" || hdr.Get("Retry-After") == "" || hdr.Get("x-ms-throttle-limit-percentage") != "1.2" {
		t.Fatalf("over budget: %d %v %v", st, hdr, body)
	}
}

// A lost response: the write lands, the client gets a 504 and cannot tell.
func TestLostResponseWriteLands(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	tok := e.mustToken(e.credFor(p), msftsim.ResourceGraph)
	c := e.app("User.Read.All")
	e.admin.SetFaults(routeFaults("graph.applications.addPassword", faults.Rule{LostResponses: &faults.LostResponses{Injection: faults.Injection{Every: 1, Count: 1}}}))
	st, _, body := e.do("POST", e.ep.Graph+"/applications/"+c.ObjectID+"/addPassword", tok,
		map[string]any{"passwordCredential": map[string]any{"displayName": "lost-1"}})
	if st != 504 || errCode(body) != "UnknownError" {
		t.Fatalf("want 504 UnknownError, got %d %v", st, body)
	}
	st, _, app := e.do("GET", e.ep.Graph+"/applications/"+c.ObjectID+"?$select=passwordCredentials", tok, nil)
	found := 0
	for _, pc := range app["passwordCredentials"].([]any) {
		if pc.(map[string]any)["displayName"] == "lost-1" {
			found++
		}
	}
	if st != 200 || found != 1 {
		t.Fatalf("the lost write did not land: %d, %d credentials named lost-1", st, found)
	}
	if got := e.admin.Count("graph.applications.addPassword").Faulted[faults.KindLostResponse]; got != 1 {
		t.Fatalf("lost_response counted %d times", got)
	}
}
