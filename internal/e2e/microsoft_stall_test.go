package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// stallTenant makes msftsim hold every answer for tenant (token endpoint,
// Graph, ARM) for ten minutes: a stalled Microsoft, as far as dzconnect
// can tell. The held requests end when the client gives up.
func stallTenant(sim *msftsim.Sim, tenant string) {
	sim.Admin().SetFaults(faults.Config{Tenants: map[string]faults.Scope{
		tenant: {Rule: faults.Rule{Latency: &faults.Latency{Min: faults.Duration(10 * time.Minute)}}},
	}})
}

// microsoftTimeout is --microsoft-timeout in these tests.
const microsoftTimeout = 2 * time.Second

// TestMicrosoftStalled (issue 11 item 9): with Microsoft stalled, an
// on-demand check returns within seconds of --microsoft-timeout, its token
// step warning that Microsoft did not answer within the timeout; a
// secret replacement, which must prove the new secret synchronously,
// answers Unavailable naming Microsoft and changes nothing; once
// Microsoft answers again, so does the check.
func TestMicrosoftStalled(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{Users: 1, Alerts: 1, Incidents: 1, SignIns: 1},
		"--microsoft-timeout", microsoftTimeout.String(), "--secret-verify-wait", "1s")
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)

	stallTenant(f.sim, f.simTID)
	ctx, cancel := context.WithTimeout(f.org.OperatorCtx, 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := f.s.Clients().Integrations.CheckIntegration(ctx, &v1.CheckIntegrationRequest{Name: in.GetName()})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("CheckIntegration with Microsoft stalled: %v (after %s)", err, took)
	}
	c := resp.GetCheck()
	t.Logf("check with Microsoft stalled took %s:\n%s", took, describe(c))
	if took > microsoftTimeout+5*time.Second {
		t.Fatalf("the check took %s with --microsoft-timeout %s", took, microsoftTimeout)
	}
	tok := step(t, c, "token:graph")
	if tok.GetStatus() == v1.CheckStepStatus_CHECK_STEP_STATUS_PASSED || tok.GetErrorCode() != "Timeout" ||
		!strings.Contains(tok.GetMessage(), "Microsoft") || !strings.Contains(tok.GetMessage(), microsoftTimeout.String()) {
		t.Fatalf("token step with Microsoft stalled: %v %s %q", tok.GetStatus(), tok.GetErrorCode(), tok.GetMessage())
	}
	if c.GetOutcome() == v1.IntegrationState_INTEGRATION_STATE_HEALTHY || !strings.Contains(c.GetSummary(), "Microsoft") {
		t.Fatalf("outcome %v, summary %q: should say Microsoft did not answer", c.GetOutcome(), c.GetSummary())
	}

	// A synchronous secret trial: Unavailable naming Microsoft, nothing
	// changed.
	cur, err := f.s.Clients().Integrations.GetIntegration(f.org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	rows := integrationRows(t, f.s, in.GetName())
	start = time.Now()
	_, err = f.s.Clients().Integrations.UpdateIntegration(ctx, &v1.UpdateIntegrationRequest{
		Integration:  &v1.Integration{Name: in.GetName(), Etag: cur.GetIntegration().GetEtag(), DisplayName: "Renamed"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
		ClientSecret: "stall~" + strings.ReplaceAll(uuid.NewString(), "-", ""),
	})
	took = time.Since(start)
	st := wantCode(t, err, codes.Unavailable)
	if !strings.Contains(st.Message(), "Microsoft") || took > microsoftTimeout+5*time.Second {
		t.Fatalf("secret trial with Microsoft stalled, after %s: %q", took, st.Message())
	}
	if got := integrationRows(t, f.s, in.GetName()); got != rows {
		t.Fatalf("the failed update changed the integration:\nbefore %s\nafter  %s", rows, got)
	}

	f.sim.Admin().SetFaults(faults.Config{})
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
}

// TestProvisionMicrosoftStalled: a provisioning whose Microsoft calls
// stall fails its step attempt after --microsoft-timeout (a transient
// Microsoft error, retried with backoff) and completes once Microsoft
// answers again, with nothing created twice.
func TestProvisionMicrosoftStalled(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true, "--microsoft-timeout", microsoftTimeout.String())
	stallTenant(f.sim, f.simTID)
	op := f.provision(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER}, uuid.NewString())

	// A step attempt fails on the timeout and is scheduled again.
	var failed *v1.OperationStep
	pollFor(t, time.Minute, "a step attempt failing on the timeout", func() bool {
		r, err := f.ops.GetOperation(f.viewer(t), &v1.GetOperationRequest{Name: op.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetOperation().GetDone() {
			t.Fatalf("operation ended with Microsoft stalled: %v", r)
		}
		for _, s := range r.GetOperation().GetMetadata().GetSteps() {
			if e := s.GetLastError(); e != nil && strings.Contains(e.GetMessage(), "Microsoft") {
				failed = s
				return true
			}
		}
		return false
	})
	t.Logf("step %s attempt %d: %v", failed.GetName(), failed.GetAttempts(), failed.GetLastError())
	if e := failed.GetLastError(); e.GetReason() != "transient" || !strings.Contains(e.GetMessage(), microsoftTimeout.String()) {
		t.Fatalf("step error with Microsoft stalled: %v", e)
	}

	f.sim.Admin().SetFaults(faults.Config{})
	done := f.wait(t, op.GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("operation after Microsoft answers again: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	in := f.integration(t, done)
	f.assertDirectory(t, done, in, integration.KindDefender)
}
