package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/simtest"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestProvisionUnderFaults (issue 8 item 7): msftsim answers 20% of
// requests with 429 (Retry-After 1 s) and hides every new object
// (application, service principal, grants, role assignments) from the
// first read that would find it, as replication lag does; 50 provisions
// across 10 tenants (5 organizations, each with its own provisioner
// consented in all 10) all succeed, no request came back before its
// Retry-After (msftsim's early-retry counter stays 0), and nothing exists
// twice: one application per uniqueName, one service principal per
// application, no duplicate grant, one live password per integration,
// and the one Vault holds.
func TestProvisionUnderFaults(t *testing.T) {
	t.Parallel()
	const orgs, tenants = 5, 10
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: append(stack.SimArgs(sim), "--jobs=true")})
	base := consentFixture{s: s, sim: sim}
	var simTIDs []string
	for i := range tenants {
		info, err := sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: fmt.Sprintf("Customer %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		simTIDs = append(simTIDs, info.ID)
	}
	// Every (organization, tenant) pair: a tenant in the organization,
	// its provisioner consented there.
	var cases []provisionFixture
	for o := range orgs {
		prov, err := sim.Admin().RegisterProvisioner(uuid.NewString(), msftsim.AppRequest{DisplayName: fmt.Sprintf("Provisioner %d", o),
			RequestedRoles: simtest.ProvisionerRoles})
		if err != nil {
			t.Fatal(err)
		}
		org := s.NewOrg(t, fmt.Sprintf("Faults %d", o))
		if _, err := s.Clients().Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
			Name: org.Name, ClientId: prov.ClientID, ClientSecret: prov.ClientSecret}); err != nil {
			t.Fatal(err)
		}
		for _, tid := range simTIDs {
			f := provisionFixture{consentFixture: consentFixture{s: s, sim: sim, org: org, prov: prov, simTID: tid},
				prov: v1.NewProvisioningServiceClient(s.Conn), ops: v1.NewOperationServiceClient(s.Conn)}
			resp, err := s.Clients().Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
				EntraTenantId: tid, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer"}})
			if err != nil {
				t.Fatal(err)
			}
			f.tenant = resp.GetTenant().GetName()
			link := base.link(t, f.operator(t), f.tenant)
			if _, err := s.Clients().Tenants.CompleteAdminConsent(f.operator(t), completeReq(org.Name, base.follow(t, link.GetUrl()))); err != nil {
				t.Fatal(err)
			}
			cases = append(cases, f)
		}
	}

	sim.Admin().ResetCounters()
	sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Rule: faults.Rule{
		Throttle:   &faults.Throttle{Rate: 0.2, RetryAfterSeconds: 1},
		ObjectLag:  &faults.Lag{Reads: 1},
		SecretLag:  &faults.Lag{Reads: 1},
		ConsentLag: &faults.Lag{Reads: 1},
	}}})
	start := time.Now()
	ops := make([]string, len(cases))
	var wg sync.WaitGroup
	for i, f := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops[i] = f.provision(t, &v1.ProvisioningSpec{Kind: defenderKind}, uuid.NewString()).GetName()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	done := make([]*v1.Operation, len(cases))
	for i, f := range cases {
		done[i] = f.wait(t, ops[i])
	}
	elapsed := time.Since(start)
	sim.Admin().SetFaults(faults.Config{}) // the assertions below read without faults

	failed := 0
	for i, op := range done {
		if op.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
			failed++
			t.Errorf("provision %d: %v", i, op)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d provisions did not succeed", failed, len(done))
	}
	// What the steps saw and retried (their last error before success).
	reruns := map[string]int{}
	for _, op := range done {
		for _, st := range op.GetMetadata().GetSteps() {
			if st.GetAttempts() > 1 {
				reruns[st.GetName()+": "+st.GetLastError().GetReason()] += int(st.GetAttempts()) - 1
			}
		}
	}
	t.Logf("steps tried again: %v", reruns)
	var throttled, early int64
	for _, c := range sim.Admin().Counters() {
		throttled += int64(c.Faulted[faults.KindThrottle])
	}
	early = sim.Admin().TotalEarlyRetries()
	t.Logf("%d provisions in %s; %d answers were 429; early retries %d (%v)", len(done), elapsed.Round(time.Millisecond), throttled, early,
		sim.Admin().EarlyRetries())
	if early != 0 {
		t.Fatalf("%d requests came back before their Retry-After: %v", early, sim.Admin().EarlyRetries())
	}
	if throttled == 0 {
		t.Fatal("msftsim throttled nothing: the test proves nothing")
	}
	for i, f := range cases {
		in := f.integration(t, done[i])
		// One app per uniqueName, one SP, one grant per permission, one
		// live dzconnect password, Vault's.
		f.assertDirectory(t, done[i], in, integration.KindDefender)
	}
	for _, tid := range simTIDs {
		apps, err := sim.Admin().Applications(tid, func(a msftsim.AppState) bool { return strings.HasPrefix(a.UniqueName, "dzconnect-") })
		if err != nil || len(apps) != orgs {
			t.Fatalf("tenant %s: %d dzconnect applications, %v; want %d", tid, len(apps), err, orgs)
		}
	}
}
