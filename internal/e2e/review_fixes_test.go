package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// TestStaleCheckIsHistoryOnly: a check that ran on settings changed
// meanwhile (e.g. before a new secret) is kept but does not set the state.
func TestStaleCheckIsHistoryOnly(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	n, _ := resource.ParseIntegration("name", in.GetName())
	r, err := recordCheck(f.s.DB, verify.Check{
		Org: n.Org, Tenant: n.Tenant, Integration: n.Integration, ID: uuid.Must(uuid.NewV7()),
		Outcome: integration.StateBroken, Trigger: verify.TriggerSchedule, Summary: "stale",
		Start: time.Now(), End: time.Now(), IntegrationVersion: 999,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Changed() || r.Integration.State != integration.StateHealthy {
		t.Fatalf("a stale check changed the state: %+v", r.Integration.State)
	}
	if n := countRows(t, f.s, "checks"); n != 2 {
		t.Fatalf("%d checks, want the stale one kept as history too", n)
	}
}

// TestProductWithoutTokenIsUnavailable: live response on a tenant without
// Defender for Endpoint: the token for it is refused (AADSTS500011), its
// probe is unavailable, and the rest is judged: healthy.
func TestProductWithoutTokenIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{Licences: []string{msftsim.LicenceEntraP1}})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles},
		&v1.Integration{Kind: defenderKind, Features: []v1.Feature{v1.Feature_FEATURE_LIVE_RESPONSE}})
	c := f.check(t, in.GetName())
	if s := step(t, c, "token:defender"); s.GetStatus() != unavailable {
		t.Fatalf("defender token step %v", s)
	}
	if s := step(t, c, "probe:defender-machines"); s.GetStatus() != unavailable {
		t.Fatalf("defender probe %v", s)
	}
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
}

// TestCanceledCheckRecordsNothing: a caller that goes away mid-check
// leaves no verdict behind.
func TestCanceledCheckRecordsNothing(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.users.list": {Latency: &faults.Latency{Min: faults.Duration(3 * time.Second), Max: faults.Duration(3 * time.Second)}},
	}}})
	f.sim.Admin().ResetCounters()
	ctx, cancel := context.WithCancel(f.org.OperatorCtx)
	done := make(chan error, 1)
	go func() {
		_, err := f.s.Clients().Integrations.CheckIntegration(ctx, &v1.CheckIntegrationRequest{Name: in.GetName()})
		done <- err
	}()
	// The simulator counts a request when it has answered it: once the
	// token is counted the check is in its probes, and it cannot finish
	// before the 3 s users call returns.
	deadline := time.Now().Add(30 * time.Second)
	for f.sim.Admin().Count("entra.token").Requests == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the check never got its token")
		}
		time.Sleep(5 * time.Millisecond) // polling the simulator's counter, not waiting for an outcome
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("canceled call succeeded")
	}
	// The server notices the cancellation when the slow call returns; a
	// fresh check afterwards must be the only one recorded.
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	if n := countRows(t, f.s, "checks"); n != 1 {
		t.Fatalf("%d checks recorded, want only the completed one", n)
	}
}

// TestOrganizationDeleteQueuesWebhookSecrets: deleting an organization
// queues its webhooks' signing secrets for destruction (destroy_secret
// jobs, in the deleting transaction).
func TestOrganizationDeleteQueuesWebhookSecrets(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	org := f.s.NewOrg(t, "Doomed")
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(org.AdminCtx, &v1.CreateWebhookRequest{Parent: org.Name,
		Webhook: &v1.Webhook{Url: "https://hooks.example.com/x", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Clients().Orgs.DeleteOrganization(f.s.Admin(t), &v1.DeleteOrganizationRequest{Name: org.Name}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.s.DB.QueryRow(context.Background(), `select count(*) from river_job where kind = 'destroy_secret' and args->>'path' like '%/webhooks/%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d webhook secrets queued for destruction, want 1", n)
	}
}

// TestWebhookLimit: an organization has at most MaxPerOrganization webhooks.
func TestWebhookLimit(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	c := v1.NewWebhookServiceClient(f.s.Conn)
	create := func() error {
		_, err := c.CreateWebhook(f.org.AdminCtx, &v1.CreateWebhookRequest{Parent: f.org.Name, Webhook: &v1.Webhook{
			Url: "https://hooks.example.com/x", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}})
		return err
	}
	for range webhook.MaxPerOrganization {
		if err := create(); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, create(), codes.FailedPrecondition)
	if n := countRows(t, f.s, "webhooks"); n != webhook.MaxPerOrganization {
		t.Fatalf("%d webhooks", n)
	}
}

// TestScheduledCheckWithSameOutcome: the usual scheduled check (same
// outcome, nothing to announce) records the check and moves the last check
// time, and queues no notification.
func TestScheduledCheckWithSameOutcome(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	first := f.check(t, in.GetName())
	wantOutcome(t, first, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(f.org.AdminCtx, &v1.CreateWebhookRequest{Parent: f.org.Name,
		Webhook: &v1.Webhook{Url: "https://hooks.example.com/x", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}}); err != nil {
		t.Fatal(err)
	}
	n, _ := resource.ParseIntegration("name", in.GetName())
	got, err := f.s.Clients().Integrations.GetIntegration(f.org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	var version int64
	if err := f.s.DB.QueryRow(context.Background(), `select version from integrations where id = $1`, n.Integration).Scan(&version); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	r, err := recordCheck(f.s.DB, verify.Check{
		Org: n.Org, Tenant: n.Tenant, Integration: n.Integration, ID: uuid.Must(uuid.NewV7()),
		Outcome: integration.StateHealthy, Trigger: verify.TriggerSchedule, Summary: "all checks passed",
		Start: end.Add(-time.Second), End: end, IntegrationVersion: version,
	})
	if err != nil || r.Changed() || r.Integration.LastCheckTime == nil || !r.Integration.LastCheckTime.Equal(end) {
		t.Fatalf("record: %+v %v", r.Integration.LastCheckTime, err)
	}
	if c := countRows(t, f.s, "checks"); c != 2 {
		t.Fatalf("%d checks", c)
	}
	if d := countRows(t, f.s, "webhook_deliveries"); d != 0 {
		t.Fatalf("%d deliveries queued for an unchanged outcome", d)
	}
	if r.Integration.Version != version || got.GetIntegration().GetEtag() == "" {
		t.Fatal("a check changed the integration's version")
	}
}
