package msftsim_test

import (
	"testing"

	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/auditlogs"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/security"
	graphsecurity "github.com/microsoftgraph/msgraph-sdk-go/security"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

func TestGraphProbesAndPaging(t *testing.T) {
	e := newEnv(t)
	c := e.app("SecurityAlert.Read.All", "SecurityIncident.Read.All", "AuditLog.Read.All", "User.Read.All", "SecurityEvents.Read.All")
	g := e.graph(e.credFor(c))
	ctx := t.Context()
	top := ptr(int32(1))

	legacy, err := g.Security().Alerts().Get(ctx, &graphsecurity.AlertsRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphsecurity.AlertsRequestBuilderGetQueryParameters{Top: top}})
	if err != nil || len(legacy.GetValue()) != 1 || legacy.GetValue()[0].GetVendorInformation() == nil {
		t.Fatalf("legacy alerts: %v", err)
	}

	alerts, err := g.Security().Alerts_v2().Get(ctx, &graphsecurity.Alerts_v2RequestBuilderGetRequestConfiguration{
		QueryParameters: &graphsecurity.Alerts_v2RequestBuilderGetQueryParameters{Top: top}})
	if err != nil || len(alerts.GetValue()) != 1 || alerts.GetOdataNextLink() == nil || alerts.GetValue()[0].GetSeverity() == nil {
		t.Fatalf("alerts_v2: %v", err)
	}
	inc, err := g.Security().Incidents().Get(ctx, &graphsecurity.IncidentsRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphsecurity.IncidentsRequestBuilderGetQueryParameters{Top: top}})
	if err != nil || len(inc.GetValue()) != 1 || inc.GetValue()[0].GetDisplayName() == nil {
		t.Fatalf("incidents: %v", err)
	}
	si, err := g.AuditLogs().SignIns().Get(ctx, &auditlogs.SignInsRequestBuilderGetRequestConfiguration{
		QueryParameters: &auditlogs.SignInsRequestBuilderGetQueryParameters{Top: top}})
	if err != nil || len(si.GetValue()) != 1 || si.GetValue()[0].GetUserPrincipalName() == nil {
		t.Fatalf("signIns: %v", err)
	}

	// Follow @odata.nextLink with the SDK's page iterator: 5 users, 2 a page.
	first, err := g.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Top: ptr(int32(2))}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := msgraphcore.NewPageIterator[models.Userable](first, g.GetAdapter(), models.CreateUserCollectionResponseFromDiscriminatorValue)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := it.Iterate(ctx, func(u models.Userable) bool { ids = append(ids, *u.GetId()); return true }); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	if len(ids) != 5 {
		t.Fatalf("paged %d users", len(ids))
	}
	one, err := g.Users().ByUserId(ids[3]).Get(ctx, nil)
	if err != nil || *one.GetId() != ids[3] {
		t.Fatalf("get user: %v", err)
	}
	if n := e.admin.Count("graph.users.list").Requests; n != 3 {
		t.Fatalf("graph.users.list counted %d requests, want 3 pages", n)
	}
	var _ security.Alertable = alerts.GetValue()[0]
}

func TestGraphUnlicensedProbesAnswerDistinct403(t *testing.T) {
	e := newEnv(t)
	c := e.app("SecurityAlert.Read.All", "SecurityIncident.Read.All", "AuditLog.Read.All")
	if err := e.admin.SetLicences(e.tenant, map[string]string{msftsim.LicenceLogAnalytics: ""}); err != nil {
		t.Fatal(err)
	}
	g := e.graph(e.credFor(c))
	ctx := t.Context()
	_, err := g.Security().Alerts_v2().Get(ctx, nil)
	_ = odata(t, err, 403, "Forbidden")
	_, err = g.Security().Incidents().Get(ctx, nil)
	_ = odata(t, err, 403, "Forbidden")
	_, err = g.AuditLogs().SignIns().Get(ctx, nil)
	_ = odata(t, err, 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	// Without the permission the code is the permission one.
	noPerm := e.graph(e.credFor(e.app()))
	_, err = noPerm.Security().Alerts_v2().Get(ctx, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")
}

func TestGraphOrganizationAndServicePrincipalDelete(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(append([]string{"Organization.Read.All"}, provisionerRoles...))
	g := e.graph(e.credFor(p))
	ctx := t.Context()
	org, err := g.Organization().Get(ctx, nil)
	if err != nil || len(org.GetValue()) != 1 || *org.GetValue()[0].GetId() != e.tenant {
		t.Fatalf("organization: %v", err)
	}
	c := e.app()
	if err := g.ServicePrincipals().ByServicePrincipalId(c.SPObjectID).Delete(ctx, nil); err != nil {
		t.Fatalf("delete service principal: %v", err)
	}
	_, err = e.token(e.credFor(c), msftsim.ResourceGraph)
	aadsts(t, err, 7000229) // the app is registered here but has no service principal any more
	apps, err := g.Applications().Get(ctx, nil)
	if err != nil || len(apps.GetValue()) != 1 {
		t.Fatalf("list applications: %v", err)
	}
}

// Paging must be stable: every application exactly once across pages.
func TestGraphApplicationPagingIsStable(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	want := map[string]bool{}
	for i := range 7 {
		c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "app", ClientID: ""})
		if err != nil {
			t.Fatal(err)
		}
		want[c.ObjectID] = true
		_ = i
	}
	first, err := g.Applications().Get(t.Context(), &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Top: ptr(int32(2))}})
	if err != nil {
		t.Fatal(err)
	}
	it, _ := msgraphcore.NewPageIterator[models.Applicationable](first, g.GetAdapter(), models.CreateApplicationCollectionResponseFromDiscriminatorValue)
	seen := map[string]int{}
	if err := it.Iterate(t.Context(), func(a models.Applicationable) bool { seen[*a.GetId()]++; return true }); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Fatalf("application %s seen %d times over the pages", id, seen[id])
		}
	}
}
