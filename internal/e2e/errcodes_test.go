package e2e

import (
	"strconv"
	"strings"
	"testing"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// tokenStepFails checks that the check is broken (or blocked) on its token
// step with code and a remedy naming want, and that nothing ran after it.
func tokenStepFails(t *testing.T, c *v1.Check, outcome v1.IntegrationState, status v1.CheckStepStatus, code, want string) {
	t.Helper()
	wantOutcome(t, c, outcome)
	tok := step(t, c, "token:graph")
	if tok.GetStatus() != status || tok.GetErrorCode() != code || !strings.Contains(tok.GetRemedy(), want) {
		t.Fatalf("token step %s %s remedy %q; want %s %s remedy naming %q\n%s", tok.GetStatus(), tok.GetErrorCode(), tok.GetRemedy(),
			status, code, want, describe(c))
	}
	if s := step(t, c, "probe:graph-users"); s.GetStatus() != skipped {
		t.Fatalf("probe after a sign-in failure = %v", s.GetStatus())
	}
}

// An app registered in the customer tenant whose service principal is gone
// (or was never created): Entra answers AADSTS7000229, and the check says
// to create it by granting admin consent, not "app not found".
func TestCheckAppWithoutServicePrincipal(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	in, creds := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	if err := f.sim.Admin().DeleteServicePrincipal(f.simTID, creds.ClientID); err != nil {
		t.Fatal(err)
	}
	c := f.checkAfterSettle(t, in.GetName())
	tokenStepFails(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN, failed, "AADSTS7000229", "admin consent")
}

// A customer tenant that lives in another Microsoft cloud than the one set
// on the dzconnect tenant: Entra's global authority answers AADSTS900382,
// and the remedy names the tenant's cloud field.
func TestCheckTenantInAnotherCloud(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{Cloud: "us-gov-gcc-high"}, "--settle-window", "1ns")
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	c := f.checkAfterSettle(t, in.GetName())
	tokenStepFails(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN, failed, "AADSTS900382", "tenant.cloud")
}

// Codes no simulated condition produces come from msftsim's tokenErrors
// fault: a tenant security policy (530032) blocks, a user pass-through
// error (90072) points at the tenant ID, and a request without a credential
// (7000218) is the operator's.
func TestCheckInjectedSignInErrors(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	for _, tc := range []struct {
		code    int
		outcome v1.IntegrationState
		status  v1.CheckStepStatus
		want    string
	}{
		{530032, v1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY, v1.CheckStepStatus_CHECK_STEP_STATUS_BLOCKED, "security policy"},
		{90072, v1.IntegrationState_INTEGRATION_STATE_BROKEN, failed, "Directory (tenant) ID"},
		{70001, v1.IntegrationState_INTEGRATION_STATE_BROKEN, failed, "Enabled for users to sign in"},
	} {
		f.sim.Admin().SetFaults(faults.Config{Tenants: map[string]faults.Scope{f.simTID: {Routes: map[string]faults.Rule{
			"entra.token": {TokenErrors: &faults.TokenErrors{Code: tc.code}}}}}})
		c := f.checkAfterSettle(t, in.GetName())
		tokenStepFails(t, c, tc.outcome, tc.status, "AADSTS"+strconv.Itoa(tc.code), tc.want)
	}
	// Without the fault the same integration is healthy again.
	f.sim.Admin().SetFaults(faults.Config{})
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
}
