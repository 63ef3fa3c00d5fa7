package e2e

import (
	"strings"
	"testing"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/provision"
)

// TestProvisionAppSpecificPolicy: step a reads the policy assigned to the
// application it will adopt (an app-specific appManagementPolicy replaces
// the tenant default): a re-provision of an application whose own policy
// blocks secrets ends blocked-by-policy, although the tenant default
// allows them.
func TestProvisionAppSpecificPolicy(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	spec := &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER}
	first := f.wait(t, f.provision(t, spec, "").GetName())
	if first.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("first provisioning: %v", first)
	}
	appID := stepOutputs(first, provision.StepApplication)["app_id"].(string)
	if _, err := f.sim.Admin().AddAppPolicy(f.simTID, msftsim.AppPolicySpec{DisplayName: "No secrets for Dropzone",
		PolicySpec: msftsim.PolicySpec{BlockPasswordAddition: true}, AppliesTo: []string{appID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Clients().Integrations.DeleteIntegration(f.operator(t), &v1.DeleteIntegrationRequest{Name: first.GetTarget()}); err != nil {
		t.Fatal(err)
	}
	op := f.wait(t, f.provision(t, spec, "").GetName())
	if op.GetState() != v1.OperationState_OPERATION_STATE_FAILED || op.GetError().GetReason() != "blocked-by-policy" ||
		op.GetError().GetStep() != provision.StepPolicy || !strings.Contains(op.GetError().GetRemedy(), "certificate") {
		t.Fatalf("re-provision under the app's own policy: %v", op)
	}
}
