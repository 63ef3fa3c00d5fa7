package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// TestOnDemandCheckBound: on-demand checks run at most
// --on-demand-check-concurrency at once per replica and
// --on-demand-check-per-organization per organization; beyond, a check (or
// a new secret's trial) is refused at once, RESOURCE_EXHAUSTED with
// CHECKS_BUSY, RetryInfo and the scope, and nothing is recorded.
//
// Checks are held in flight by the simulator: every token request waits
// until its caller goes away (a latency far beyond the test), and the
// test releases them by canceling their calls.
func TestOnDemandCheckBound(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--on-demand-check-concurrency=3", "--on-demand-check-per-organization=2")
	c := f.s.Clients()
	var a []*v1.Integration
	for range 3 {
		in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
		a = append(a, in)
	}
	// Organization B: the same customer tenant, its own app and integration.
	b := f.s.NewOrg(t, "Other")
	bt, err := c.Tenants.CreateTenant(b.OperatorCtx, &v1.CreateTenantRequest{Parent: b.Name, Tenant: &v1.Tenant{
		EntraTenantId: f.simTID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer"}})
	if err != nil {
		t.Fatal(err)
	}
	bf := f
	bf.org, bf.tenant = b, bt.GetTenant().GetName()
	var bIns []*v1.Integration
	for range 2 {
		in, _ := bf.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
		bIns = append(bIns, in)
	}

	hold := faults.Latency{Min: faults.Duration(10 * time.Minute), Max: faults.Duration(10 * time.Minute)}
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{"entra.token": {Latency: &hold}}}})
	var held []func() error // cancel a held check and return its error
	start := func(ctx context.Context, in *v1.Integration) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := c.Integrations.CheckIntegration(ctx, &v1.CheckIntegrationRequest{Name: in.GetName()})
			done <- err
		}()
		held = append(held, func() error { cancel(); return <-done })
	}
	inFlight := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for metricValue(t, f.s, "dzconnect_on_demand_checks_in_flight") != want {
			if time.Now().After(deadline) {
				t.Fatalf("on-demand checks in flight never reached %v (now %v)", want, metricValue(t, f.s, "dzconnect_on_demand_checks_in_flight"))
			}
			time.Sleep(10 * time.Millisecond) // polling the server's gauge, not waiting for an outcome
		}
	}

	// A holds its two slots: its third check is refused for the organization.
	start(f.org.OperatorCtx, a[0])
	start(f.org.OperatorCtx, a[1])
	inFlight(2)
	_, err = c.Integrations.CheckIntegration(f.org.OperatorCtx, &v1.CheckIntegrationRequest{Name: a[2].GetName()})
	if delay, md := limitRefusal(t, err, "CHECKS_BUSY", "organization"); delay < time.Second || md["limit"] != "2" {
		t.Fatalf("organization's bound: retry delay %v, metadata %v; want at least 1s and limit 2", delay, md)
	}
	// A new client secret is an on-demand check too: refused, nothing changed.
	before, err := c.Integrations.GetIntegration(f.org.ViewerCtx, &v1.GetIntegrationRequest{Name: a[2].GetName()})
	if err != nil {
		t.Fatal(err)
	}
	credsBefore := countRows(t, f.s, "credentials")
	_, err = c.Integrations.UpdateIntegration(f.org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: a[2].GetName(), Etag: before.GetIntegration().GetEtag()}, UpdateMask: &fieldmaskpb.FieldMask{},
		ClientSecret: "abc8Q~a-new-secret-that-is-never-tried-0000"})
	limitRefusal(t, err, "CHECKS_BUSY", "organization")
	after, err := c.Integrations.GetIntegration(f.org.ViewerCtx, &v1.GetIntegrationRequest{Name: a[2].GetName()})
	if err != nil || after.GetIntegration().GetEtag() != before.GetIntegration().GetEtag() || countRows(t, f.s, "credentials") != credsBefore {
		t.Fatalf("a refused secret update changed the integration (etag %s → %s) or left a credential row: %v", before.GetIntegration().GetEtag(), after.GetIntegration().GetEtag(), err)
	}

	// B is not held back by A's bound: its first check takes the
	// replica's last slot; its second is refused for the replica.
	start(b.OperatorCtx, bIns[0])
	inFlight(3)
	_, err = c.Integrations.CheckIntegration(b.OperatorCtx, &v1.CheckIntegrationRequest{Name: bIns[1].GetName()})
	if _, md := limitRefusal(t, err, "CHECKS_BUSY", "replica"); md["limit"] != "3" {
		t.Fatalf("replica's bound: metadata %v, want limit 3", md)
	}
	if r, o := metricValue(t, f.s, `dzconnect_on_demand_checks_refused_total{scope="replica"}`),
		metricValue(t, f.s, `dzconnect_on_demand_checks_refused_total{scope="organization"}`); r != 1 || o != 2 {
		t.Fatalf("refusals counted: replica %v, organization %v; want 1 and 2", r, o)
	}

	// Release: the held calls end (canceled, nothing recorded), the slots
	// come back, and a check runs and is recorded.
	for _, cancel := range held {
		if err := cancel(); err == nil {
			t.Fatal("a held check succeeded")
		}
	}
	inFlight(0)
	if n := countRows(t, f.s, "checks"); n != 0 {
		t.Fatalf("%d checks recorded from refused or canceled calls, want none", n)
	}
	f.sim.Admin().SetFaults(faults.Config{})
	wantOutcome(t, f.check(t, a[2].GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	wantOutcome(t, bf.check(t, bIns[1].GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
}
