package e2e

import (
	"context"
	"path"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// US Government GCC (moderate) end to end (issue 10 item 4): a GCC tenant
// is created with CLOUD_US_GOV_GCC and its integration checks healthy:
// GCC signs in at the global authority (the simulator's), unlike GCC High,
// DoD and China.
func TestCloudGCCEndToEnd(t *testing.T) {
	t.Parallel()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	info, err := sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: "Agency (GCC)", Cloud: "us-gov-gcc"})
	if err != nil {
		t.Fatal(err)
	}
	org := s.NewOrg(t, "Gov")
	resp, err := s.Clients().Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_US_GOV_GCC, DisplayName: "Agency"}})
	if err != nil {
		t.Fatal(err)
	}
	tn := resp.GetTenant()
	got, err := s.Clients().Tenants.GetTenant(org.OperatorCtx, &v1.GetTenantRequest{Name: tn.GetName()})
	if err != nil || got.GetTenant().GetCloud() != v1.Cloud_CLOUD_US_GOV_GCC {
		t.Fatalf("GetTenant: %v %v", got, err)
	}
	f := verifyFixture{s: s, sim: sim, org: org, tenant: tn.GetName(), simTID: info.ID}
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)

}

// Microsoft Sentinel is retired in Azure operated by 21Vianet on
// 2026-08-18: a Sentinel integration in a China tenant is refused with
// FailedPrecondition naming the reason and the source, and nothing is
// written; a Defender one is not refused; an existing Sentinel integration
// in a China tenant checks broken with that remedy.
func TestCloudChinaSentinelRefused(t *testing.T) {
	t.Parallel()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	org := s.NewOrg(t, "China")
	ctx := org.OperatorCtx
	resp, err := s.Clients().Tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: uuid.NewString(), Cloud: v1.Cloud_CLOUD_CHINA, DisplayName: "Contoso China"}})
	if err != nil {
		t.Fatal(err)
	}
	china := resp.GetTenant().GetName()
	sentinel := &v1.Integration{Kind: sentinelKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()},
		Sentinel: &v1.SentinelWorkspace{SubscriptionId: uuid.NewString(), ResourceGroup: "rg-soc", WorkspaceName: "law-soc", WorkspaceId: uuid.NewString()}}
	before := countRows(t, s, "integrations")
	_, err = s.Clients().Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{Parent: china, Integration: sentinel,
		ClientSecret: "abc8Q~not-a-real-secret-0000000000000000"})
	wantRetired(t, err)
	if n := countRows(t, s, "integrations"); n != before {
		t.Fatalf("integrations %d -> %d: a refused create wrote a row", before, n)
	}
	// Provisioning is refused the same way, before anything else (no
	// provisioner needed to learn it).
	_, err = v1.NewProvisioningServiceClient(s.Conn).ProvisionIntegration(ctx, &v1.ProvisionIntegrationRequest{Parent: china,
		Spec: &v1.ProvisioningSpec{Kind: sentinelKind, Workspace: &v1.ProvisioningWorkspace{
			ResourceId: "/subscriptions/" + uuid.NewString() + "/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces/law-soc"}}})
	wantRetired(t, err)
	// Defender is not retired in China.
	if _, err := s.Clients().Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{Parent: china,
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}},
		ClientSecret: "abc8Q~not-a-real-secret-0000000000000000"}); err != nil {
		t.Fatalf("Defender in China: %v", err)
	}

	// An existing Sentinel integration (made before this release) in a
	// China tenant: its check reports the retirement with the remedy.
	resp, err = s.Clients().Tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: uuid.NewString(), Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Contoso (later China)"}})
	if err != nil {
		t.Fatal(err)
	}
	ir, err := s.Clients().Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{Parent: resp.GetTenant().GetName(), Integration: sentinel,
		ClientSecret: "abc8Q~not-a-real-secret-0000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	// A tenant's cloud cannot change through the API: the row is set as
	// an older release could have written it.
	if _, err := s.DB.Exec(context.Background(), `update tenants set cloud = 'china' where id = $1`,
		path.Base(resp.GetTenant().GetName())); err != nil {
		t.Fatal(err)
	}
	cr, err := s.Clients().Integrations.CheckIntegration(ctx, &v1.CheckIntegrationRequest{Name: ir.GetIntegration().GetName()})
	if err != nil {
		t.Fatal(err)
	}
	c := cr.GetCheck()
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	st := step(t, c, "cloud")
	if st.GetStatus() != failed || st.GetErrorCode() != "KIND_RETIRED_IN_CLOUD" || !strings.Contains(st.GetRemedy(), "2026-08-18") ||
		!strings.Contains(st.GetRemedy(), "https://docs.azure.cn/") {
		t.Fatalf("cloud step = %v", st)
	}
}

func wantRetired(t *testing.T, err error) {
	t.Helper()
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "2026-08-18") || !strings.Contains(st.Message(), "https://docs.azure.cn/") {
		t.Fatalf("message %q lacks the retirement date or its source", st.Message())
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == "KIND_RETIRED_IN_CLOUD" && ei.GetMetadata()["retired"] == "2026-08-18" {
			return
		}
	}
	t.Fatalf("no ErrorInfo KIND_RETIRED_IN_CLOUD in %v", st.Details())
}
