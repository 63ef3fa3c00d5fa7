package e2e

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// Sentinel's Azure roles are verified, not assumed (issue 10 item 1): the
// check reads the app's role assignments that apply at the workspace
// (assigned there or inherited from the resource group or subscription),
// compares them with the catalog (Microsoft Sentinel Reader, or Responder)
// and probes the Sentinel incidents API. Reader or Log Analytics Reader
// alone read the workspace (their */read) but are not Sentinel roles.
func TestCheckSentinelAzureRoles(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	sub := uuid.NewString()
	const rgName, wsName = "rg-soc", "law-soc"
	ws, err := f.sim.Admin().AddWorkspace(f.simTID, msftsim.Workspace{SubscriptionID: sub, ResourceGroup: rgName, Name: wsName})
	if err != nil {
		t.Fatal(err)
	}
	subScope := "/subscriptions/" + sub
	rg := subScope + "/resourceGroups/" + rgName
	wsScope := rg + "/providers/Microsoft.OperationalInsights/workspaces/" + wsName
	appRoles := []string{"log_analytics/Data.Read", "SecurityEvents.Read.All"}
	sentinel := func() *v1.Integration {
		return &v1.Integration{Kind: sentinelKind, Sentinel: &v1.SentinelWorkspace{SubscriptionId: sub, ResourceGroup: rgName,
			WorkspaceName: wsName, WorkspaceId: ws.CustomerID}}
	}

	for _, tc := range []struct {
		name  string
		roles []msftsim.AzureRole
	}{
		{"sentinel reader on the resource group", []msftsim.AzureRole{{Scope: rg, Role: "Microsoft Sentinel Reader"}}},
		{"sentinel reader inherited from the subscription", []msftsim.AzureRole{{Scope: subScope, Role: "Microsoft Sentinel Reader"}}},
		{"sentinel reader on the workspace", []msftsim.AzureRole{{Scope: wsScope, Role: "Microsoft Sentinel Reader"}}},
		{"sentinel responder (the alternative)", []msftsim.AzureRole{{Scope: rg, Role: "Microsoft Sentinel Responder"}}},
	} {
		t.Run("healthy/"+tc.name, func(t *testing.T) {
			in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI Sentinel", Roles: appRoles, AzureRoles: tc.roles}, sentinel())
			c := f.check(t, in.GetName())
			wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
			for _, name := range []string{"azure-roles", "probe:sentinel-incidents", "probe:sentinel-workspace", "probe:loganalytics-query"} {
				if s := step(t, c, name); s.GetStatus() != passed {
					t.Fatalf("%s = %v\n%s", name, s, describe(c))
				}
			}
			if s := step(t, c, "azure-roles"); !strings.Contains(s.GetMessage(), tc.roles[0].Role) || !strings.Contains(s.GetMessage(), tc.roles[0].Scope) {
				t.Fatalf("azure-roles message %q names neither the role nor where it is assigned", s.GetMessage())
			}
			if p := c.GetPermissions(); len(p.GetMissingRequired()) != 0 {
				t.Fatalf("permissions %v", p)
			}
		})
	}

	// Reader and Log Analytics Reader read the workspace and even the
	// incidents (*/read), but are not what the catalog requires: broken,
	// with the exact role, application and scope to fix it.
	for _, role := range []string{"Reader", "Log Analytics Reader"} {
		t.Run("missing/"+role+" only", func(t *testing.T) {
			in, creds := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI Sentinel", Roles: appRoles,
				AzureRoles: []msftsim.AzureRole{{Scope: rg, Role: role}}}, sentinel())
			c := f.check(t, in.GetName())
			wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
			s := step(t, c, "azure-roles")
			if s.GetStatus() != failed || s.GetErrorCode() != "AZURE_ROLE_MISSING" {
				t.Fatalf("azure-roles = %v", s)
			}
			for _, want := range []string{"assign Microsoft Sentinel Reader", creds.ClientID, creds.SPObjectID, "resource group " + rgName, rg, wsName} {
				if !strings.Contains(s.GetRemedy(), want) {
					t.Fatalf("remedy %q does not name %q", s.GetRemedy(), want)
				}
			}
			if !strings.Contains(s.GetMessage(), role+" at "+rg) {
				t.Fatalf("message %q does not say what is held", s.GetMessage())
			}
			if got := c.GetPermissions().GetMissingRequired(); len(got) != 1 || got[0] != "Microsoft Sentinel Reader" {
				t.Fatalf("missing required %v", got)
			}
			if s := step(t, c, "probe:sentinel-incidents"); s.GetStatus() != passed {
				t.Fatalf("incidents probe with %s = %v", role, s)
			}
		})
	}

	// No Azure role at all: the assignments cannot even be read (every
	// Sentinel role grants Microsoft.Authorization/*/read), and the
	// incidents probe's 403 AuthorizationFailed is classified as a missing
	// permission with the role's remedy.
	t.Run("missing/no role", func(t *testing.T) {
		in, creds := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI Sentinel", Roles: appRoles}, sentinel())
		c := f.check(t, in.GetName())
		wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
		s := step(t, c, "azure-roles")
		if s.GetStatus() != failed || s.GetErrorCode() != "AZURE_ROLE_MISSING" || !strings.Contains(s.GetRemedy(), creds.ClientID) ||
			!strings.Contains(s.GetRemedy(), "Microsoft Sentinel Reader") {
			t.Fatalf("azure-roles = %v", s)
		}
		p := step(t, c, "probe:sentinel-incidents")
		if p.GetStatus() != failed || p.GetErrorCode() != "AuthorizationFailed" ||
			!strings.Contains(p.GetMessage(), "Microsoft.SecurityInsights/incidents/read") || !strings.Contains(p.GetRemedy(), "Microsoft Sentinel Reader") {
			t.Fatalf("incidents probe = %v", p)
		}
	})
}
