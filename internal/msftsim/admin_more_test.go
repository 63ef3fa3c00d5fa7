package msftsim_test

import (
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// TestAdminBreaksIntegrations: what each new admin operation does to the
// clients, as the walkthrough in docs/msftsim.md promises.
func TestAdminBreaksIntegrations(t *testing.T) {
	e := newEnv(t)
	scope := rgScope()
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: []string{"User.Read.All"},
		AzureRoles: []msftsim.AzureRole{{Scope: scope, Role: "Microsoft Sentinel Reader"}}})
	if err != nil {
		t.Fatal(err)
	}
	wsURL := e.ep.ARM + scope + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm + "?api-version=2022-10-01"
	tok := e.mustToken(e.credFor(c), msftsim.ResourceARM)
	if st, _, b := e.do("GET", wsURL, tok, nil); st != 200 {
		t.Fatalf("workspace with Sentinel Reader: %d %v", st, b)
	}
	// Removing the Azure role: the workspace read is refused.
	if _, err := e.admin.RevokeAzureRole(e.tenant, msftsim.AzureRole{Scope: scope, Role: "Microsoft Sentinel Reader"}, c.SPObjectID); err != nil {
		t.Fatal(err)
	}
	if st, _, b := e.do("GET", wsURL, tok, nil); st != 403 || errCode(b) != "AuthorizationFailed" {
		t.Errorf("workspace after the role's removal: %d %v", st, b)
	}
	if _, err := e.admin.RevokeAzureRole(e.tenant, msftsim.AzureRole{Scope: scope, Role: "Microsoft Sentinel Reader"}, c.SPObjectID); err == nil {
		t.Error("removing a role assignment that is gone: no error")
	}
	// Removing the secret: sign-ins with it fail (AADSTS7000215).
	if err := e.admin.RemoveAppSecret(e.tenant, c.ClientID, c.SecretKeyID); err != nil {
		t.Fatal(err)
	}
	_, err = e.token(e.credFor(c), msftsim.ResourceGraph)
	aadsts(t, err, 7000215)
	// Deleting the app: AADSTS700016, and it is in deleted items.
	secret, _, err := e.admin.AddAppSecret(e.tenant, c.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.DeleteApp(e.tenant, c.ClientID); err != nil {
		t.Fatal(err)
	}
	_, err = e.token(e.secretCred(e.tenant, c.ClientID, secret), msftsim.ResourceGraph)
	aadsts(t, err, 700016)
	if items, err := e.admin.DeletedItems(e.tenant); err != nil || len(items) != 2 {
		t.Errorf("deleted items after DeleteApp: %v %+v", err, items)
	}
}

// TestTenantFaultsPatch: one tenant's faults change without replacing the
// configuration: other tenants' rules and their every/count bookkeeping
// are kept; the tenant's counters show its early retries.
func TestTenantFaultsPatch(t *testing.T) {
	e := newEnv(t)
	other, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Fabrikam"})
	if err != nil {
		t.Fatal(err)
	}
	oc, err := e.admin.CreateApp(other.ID, msftsim.AppRequest{DisplayName: "x", Roles: []string{"User.Read.All"}})
	if err != nil {
		t.Fatal(err)
	}
	// Fabrikam: every 2nd users.list is a 503.
	e.admin.SetFaults(faults.Config{Tenants: map[string]faults.Scope{other.ID: {Routes: map[string]faults.Rule{
		"graph.users.list": {ServerErrors: &faults.ServerErrors{Every: 2}}}}}})
	otok := e.mustToken(e.credFor(oc), msftsim.ResourceGraph)
	if st, _, _ := e.do("GET", e.ep.Graph+"/users", otok, nil); st != 200 {
		t.Fatalf("first Fabrikam call: %d", st)
	}
	// Contoso's faults change (PATCH) between Fabrikam's 1st and 2nd call.
	c := e.app("User.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	got, err := e.admin.PatchTenantFaults(e.tenant, []byte(`{"routes":{"graph.users.list":{"throttle":{"every":1,"count":1,"retryAfterSeconds":30}}}}`))
	if err != nil || got.Routes["graph.users.list"].Throttle == nil {
		t.Fatalf("patch: %v %+v", err, got)
	}
	if st, _, _ := e.do("GET", e.ep.Graph+"/users", otok, nil); st != 503 {
		t.Errorf("Fabrikam's 2nd call after Contoso's patch: %d, want its every-2nd 503 (bookkeeping kept)", st)
	}
	if f := e.admin.Faults(); f.Tenants[other.ID].Routes["graph.users.list"].ServerErrors == nil {
		t.Errorf("Fabrikam's rule lost: %+v", f)
	}
	for range 2 {
		if st, _, _ := e.do("GET", e.ep.Graph+"/users", tok, nil); st != 429 {
			t.Errorf("Contoso throttled: %d", st)
		}
	}
	tc := e.admin.TenantCounters(e.tenant)
	if tc.TotalEarlyRetries != 1 || tc.EarlyRetries["graph.users.list"] != 1 {
		t.Errorf("Contoso's early retries: %+v", tc)
	}
	if oc := e.admin.TenantCounters(other.ID); oc.TotalEarlyRetries != 0 || oc.Routes["graph.users.list"] != 2 {
		t.Errorf("Fabrikam's counters: %+v", oc)
	}
	// null removes a member; an empty scope removes the tenant.
	if got, err := e.admin.PatchTenantFaults(e.tenant, []byte(`{"routes":{"graph.users.list":null}}`)); err != nil || len(got.Routes) != 0 {
		t.Errorf("patch null: %v %+v", err, got)
	}
	if _, ok := e.admin.Faults().Tenants[e.tenant]; ok {
		t.Error("an emptied tenant scope stays in the configuration")
	}
	if _, err := e.admin.PatchTenantFaults(e.tenant, []byte(`{"throttle":{"bogus":1}}`)); err == nil {
		t.Error("unknown fault field accepted")
	}
}
