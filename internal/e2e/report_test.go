package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// TestPropagatingReportSaysWhatAndUntilWhen: inside the settle window
// after a create, a wrong secret (AADSTS7000215, which Microsoft documents
// as possibly replication lag) is propagating, but the report names what it
// may be and when the verdict is final; the service re-checks by itself
// when the window ends (trigger "settle"), the final verdict is announced
// (integration.state_changed), and `dzctl check --wait` follows it there
// (issue 10 items 9b and 9c).
func TestPropagatingReportSaysWhatAndUntilWhen(t *testing.T) {
	t.Parallel()
	const window = 8 * time.Second
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", window.String(), "--jobs=true", "--sweep-interval", "1h",
		"--webhook-workers", "0")
	hook, _ := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, "https://hooks.example.com/dzconnect")
	creds, err := f.sim.Admin().CreateApp(f.simTID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.s.Clients().Integrations.CreateIntegration(f.org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: f.tenant,
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: creds.ClientID}},
		ClientSecret: "not~the.right_secret_value_0123456789abc"})
	if err != nil {
		t.Fatal(err)
	}
	in := resp.GetIntegration()

	// dzctl check --wait: the first report (propagating, what it may be,
	// until when), progress, then the final one; exit 3 (broken).
	out, errOut, code := f.dzctl(t, f.org.Operator, "", "check", in.GetName(), "--wait", "--poll-interval", "200ms", "--ascii")
	if code != 3 {
		t.Fatalf("check --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	first, final, ok := strings.Cut(out, "Waiting for the final verdict")
	if !ok || !strings.HasPrefix(first, "PROPAGATING: Not final until ") ||
		!strings.Contains(first, "if it persists after then (re-checked automatically): ") ||
		!strings.Contains(first, "if this persists after ") || !strings.Contains(first, "AADSTS7000215") {
		t.Fatalf("first report:\n%s", out)
	}
	if i := strings.Index(final, "BROKEN: Sign-in failed: "); i < 0 || !strings.Contains(final[i:], "(settle)") ||
		!strings.Contains(final[i:], "AADSTS7000215") || !strings.Contains(final[i:], " — ") {
		t.Fatalf("final report:\n%s", out)
	}

	// The history: the on-demand check, propagating with its window's end
	// and the real remedy, then the settle re-check, broken.
	checks, err := f.s.Clients().Integrations.ListChecks(f.org.ViewerCtx, &v1.ListChecksRequest{Parent: in.GetName()})
	if err != nil || len(checks.GetChecks()) < 2 {
		t.Fatalf("ListChecks: %v %v", checks, err)
	}
	cs := checks.GetChecks()
	settle, api := cs[0], cs[len(cs)-1]
	wantOutcome(t, api, v1.IntegrationState_INTEGRATION_STATE_PROPAGATING)
	end := api.GetSettleEndTime().AsTime()
	if api.GetSettleEndTime() == nil || end.Sub(in.GetCreateTime().AsTime()) != window {
		t.Fatalf("settle end %v, created %v, window %v", end, in.GetCreateTime().AsTime(), window)
	}
	tok := step(t, api, "token:graph")
	clock := end.UTC().Format("15:04:05 UTC")
	if tok.GetStatus() != propagating || tok.GetIfPersists() == "" || !strings.Contains(tok.GetRemedy(), "if this persists after "+clock+": "+tok.GetIfPersists()) ||
		!strings.Contains(api.GetSummary(), "Not final until "+clock) || !strings.Contains(api.GetSummary(), strings.TrimRight(tok.GetIfPersists(), ". ")) {
		t.Fatalf("propagating check hides the remedy or the time:\n%s\nremedy %q", describe(api), tok.GetRemedy())
	}
	wantOutcome(t, settle, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	if settle.GetTrigger() != "settle" || settle.GetStartTime().AsTime().Before(end) || settle.GetSettleEndTime() != nil ||
		settle.GetSummary() != "Sign-in failed: "+strings.TrimRight(step(t, settle, "token:graph").GetMessage(), ". ")+
			" (AADSTS7000215) — "+strings.TrimRight(step(t, settle, "token:graph").GetRemedy(), ". ") {
		t.Fatalf("settle re-check:\n%s (trigger %s, start %v)", describe(settle), settle.GetTrigger(), settle.GetStartTime().AsTime())
	}

	// Announced: propagating (the on-demand check), then broken (the re-check),
	// the payload's summary being the check's one line.
	ds, err := v1.NewWebhookServiceClient(f.s.Conn).ListWebhookDeliveries(f.org.AdminCtx, &v1.ListWebhookDeliveriesRequest{Parent: hook.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, d := range ds.GetDeliveries() {
		var ev struct {
			PreviousState string `json:"previous_state"`
			State         string `json:"state"`
			Summary       string `json:"summary"`
			Check         string `json:"check"`
		}
		if err := json.Unmarshal([]byte(d.GetPayload()), &ev); err != nil {
			t.Fatal(err)
		}
		states = append(states, ev.PreviousState+">"+ev.State)
		if ev.Check == settle.GetName() && ev.Summary != settle.GetSummary() {
			t.Fatalf("event summary %q, check summary %q", ev.Summary, settle.GetSummary())
		}
	}
	if strings.Join(states, " ") != "propagating>broken unverified>propagating" {
		t.Fatalf("state_changed events (newest first): %v", states)
	}
}
