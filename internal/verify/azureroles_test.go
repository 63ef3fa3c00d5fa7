package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

const (
	roleSentinelReader    = "8d289c81-5878-46d4-8554-54e1e3d8b5cb"
	roleSentinelResponder = "3e150937-b8fe-4cfb-8069-0eaf05ecd056"
	roleReader            = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	roleLAReader          = "73c42c96-874c-492b-b04d-ab87d138a893"
	roleContributor       = "b24988ac-6180-42a0-ab88-20f7382dd24c"
)

func def(sub, id string) string {
	return "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + id
}

func TestCompareAzureRoles(t *testing.T) {
	entries := catalog.Default().For(integration.KindSentinel, nil)
	rg := "/subscriptions/s/resourceGroups/rg"
	for _, tc := range []struct {
		name        string
		as          []AzureRoleAssignment
		satisfied   bool
		missing     []string
		broader     bool
		grantedWant string
	}{
		{"sentinel reader on the resource group", []AzureRoleAssignment{{def("s", roleSentinelReader), rg}}, true, nil, false, "Microsoft Sentinel Reader at " + rg},
		{"sentinel reader inherited from the subscription (GUID only)", []AzureRoleAssignment{{roleSentinelReader, "/subscriptions/s"}}, true, nil, false, "Microsoft Sentinel Reader at /subscriptions/s"},
		{"responder, the alternative", []AzureRoleAssignment{{def("s", roleSentinelResponder), rg}}, true, nil, false, "Microsoft Sentinel Responder"},
		{"contributor, broader than needed", []AzureRoleAssignment{{def("s", roleContributor), rg}}, true, nil, true, "Contributor"},
		{"reader only", []AzureRoleAssignment{{def("s", roleReader), rg}}, false, []string{"Microsoft Sentinel Reader"}, false, "Reader at " + rg},
		{"log analytics reader only", []AzureRoleAssignment{{def("s", roleLAReader), rg}}, false, []string{"Microsoft Sentinel Reader"}, false, "Log Analytics Reader"},
		{"a custom role", []AzureRoleAssignment{{def("s", "0000aaaa-0000-4000-8000-000000000000"), rg}}, false, []string{"Microsoft Sentinel Reader"}, false, "role 0000aaaa"},
		{"none", nil, false, []string{"Microsoft Sentinel Reader"}, false, ""},
		{"case-insensitive IDs", []AzureRoleAssignment{{def("s", strings.ToUpper(roleSentinelReader)), rg}}, true, nil, false, "Microsoft Sentinel Reader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := compareAzureRoles(entries, tc.as)
			if v.Satisfied != tc.satisfied || strings.Join(v.MissingRequired, ",") != strings.Join(tc.missing, ",") || (len(v.Broader) > 0) != tc.broader {
				t.Fatalf("verdict %+v", v)
			}
			if tc.grantedWant != "" && !strings.Contains(strings.Join(v.Granted, ";"), tc.grantedWant) {
				t.Fatalf("granted %v, want %q", v.Granted, tc.grantedWant)
			}
		})
	}
}

type roleSession struct {
	Session
	principal string
	as        []AzureRoleAssignment
	err       error
}

func (r roleSession) WorkspaceRoles(context.Context, *Workspace) (string, []AzureRoleAssignment, error) {
	return r.principal, r.as, r.err
}

func TestAzureRolesStep(t *testing.T) {
	ws := &Workspace{SubscriptionID: "s", ResourceGroup: "rg", Name: "law"}
	const client = "c1c1c1c1-0000-4000-8000-000000000001"
	denied := &mserr.Error{Service: "arm", Status: 403, Code: "AuthorizationFailed", Class: mserr.ClassPermissionMissing}
	throttled := &mserr.Error{Service: "arm", Status: 429, Code: "TooManyRequests", Class: mserr.ClassThrottled}
	for _, tc := range []struct {
		name     string
		s        roleSession
		settling bool
		status   StepStatus
		code     string
		ok       bool
	}{
		{"reader only", roleSession{principal: "sp1", as: []AzureRoleAssignment{{def("s", roleReader), "/subscriptions/s/resourceGroups/rg"}}}, false, StepFailed, "AZURE_ROLE_MISSING", false},
		{"sentinel reader", roleSession{principal: "sp1", as: []AzureRoleAssignment{{def("s", roleSentinelReader), "/subscriptions/s"}}}, false, StepPassed, "", true},
		{"cannot read assignments: no role", roleSession{principal: "sp1", err: denied}, false, StepFailed, "AZURE_ROLE_MISSING", false},
		{"missing, just changed", roleSession{principal: "sp1"}, true, StepPropagating, "AZURE_ROLE_MISSING", false},
		{"throttled", roleSession{err: throttled}, false, StepWarning, "TooManyRequests", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var settleEnd *time.Time
			if tc.settling {
				end := time.Now().Add(time.Minute)
				settleEnd = &end
			}
			st, _, ok := azureRolesStep(context.Background(), tc.s, catalog.Default(), integration.KindSentinel, nil, client, ws, settleEnd)
			if st.Name != StepAzureRoles || st.Status != tc.status || st.ErrorCode != tc.code || ok != tc.ok {
				t.Fatalf("step %+v ok %v", st, ok)
			}
			if tc.code == "AZURE_ROLE_MISSING" {
				for _, want := range []string{"Microsoft Sentinel Reader", client, "resource group rg", "/subscriptions/s/resourceGroups/rg", "workspace law"} {
					if !strings.Contains(st.Remedy, want) {
						t.Fatalf("remedy %q lacks %q", st.Remedy, want)
					}
				}
			}
		})
	}
	// A session that cannot read Azure roles: skipped, not failed.
	st, _, _ := azureRolesStep(context.Background(), nil, catalog.Default(), integration.KindSentinel, nil, client, ws, nil)
	if st.Status != StepSkipped {
		t.Fatalf("without a reader: %+v", st)
	}
}

func TestReconcileWorkspaceProbe(t *testing.T) {
	mk := func(incidents StepStatus) []Step {
		return []Step{
			{Name: "probe:" + string(ProbeSentinelWorkspace), Status: StepFailed, ErrorCode: "AuthorizationFailed"},
			{Name: "probe:" + string(ProbeSentinelIncidents), Status: incidents},
		}
	}
	s := mk(StepPassed)
	reconcileWorkspaceProbe(s, true)
	if s[0].Status != StepPassed || !strings.Contains(s[0].Message, "Sentinel API") {
		t.Fatalf("with a Sentinel role and incidents answered: %+v", s[0])
	}
	for _, tc := range []struct {
		name string
		s    []Step
		role bool
	}{{"no Sentinel role", mk(StepPassed), false}, {"incidents refused too", mk(StepFailed), true}} {
		reconcileWorkspaceProbe(tc.s, tc.role)
		if tc.s[0].Status != StepFailed {
			t.Fatalf("%s: %+v", tc.name, tc.s[0])
		}
	}
}

func TestCloudStep(t *testing.T) {
	if st, ok := cloudStep(integration.KindSentinel, tenant.CloudChina); ok || st.Status != StepFailed ||
		!strings.Contains(st.Remedy, "2026-08-18") || !strings.Contains(st.Remedy, "https://docs.azure.cn/") {
		t.Fatalf("Sentinel in China: %+v %v", st, ok)
	}
	for _, c := range []struct {
		k  integration.Kind
		cl tenant.Cloud
	}{{integration.KindDefender, tenant.CloudChina}, {integration.KindSentinel, tenant.CloudGlobal}, {integration.KindSentinel, tenant.CloudUSGovGCC}} {
		if _, ok := cloudStep(c.k, c.cl); !ok {
			t.Fatalf("%s in %s refused", c.k, c.cl)
		}
	}
}
