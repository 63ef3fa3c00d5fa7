package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// TestGroupedRecords: the sweep's records written as one group (the fast
// path and the grouped transaction) write what each check's record writes
// alone: a new outcome sets the state and queues its event, an unchanged
// one only moves the last check time, a stale one is history only, and an
// integration that is gone gets NotFound with nothing written.
func TestGroupedRecords(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(f.org.AdminCtx, &v1.CreateWebhookRequest{Parent: f.org.Name,
		Webhook: &v1.Webhook{Url: "https://hooks.example.com/x", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type target struct {
		n       resource.Integration
		state   integration.State
		version int64
	}
	var ts []target
	for range 3 {
		in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
		n, _ := resource.ParseIntegration("name", in.GetName())
		tg := target{n: n}
		if err := f.s.DB.QueryRow(ctx, `select state, version from integrations where id = $1`, n.Integration).Scan(&tg.state, &tg.version); err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	checksBefore := countRows(t, f.s, "checks")
	deliveriesBefore := countRows(t, f.s, "webhook_deliveries")
	end := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	mk := func(tg target, outcome integration.State, version int64) verify.Check {
		return verify.Check{Org: tg.n.Org, Tenant: tg.n.Tenant, Integration: tg.n.Integration, ID: uuid.Must(uuid.NewV7()),
			Outcome: outcome, Trigger: verify.TriggerSchedule, Summary: "grouped", Start: end.Add(-time.Second), End: end,
			IntegrationVersion: version}
	}
	newState := integration.StateBroken
	if ts[0].state == newState {
		newState = integration.StateDegraded
	}
	gone := ts[2].n
	gone.Integration = uuid.Must(uuid.NewV7())
	cs := []verify.Check{
		mk(ts[0], newState, ts[0].version),       // a new outcome
		mk(ts[1], ts[1].state, ts[1].version),    // unchanged
		mk(ts[2], integration.StateBroken, 9999), // stale
		mk(target{n: gone}, integration.StateBroken, 1),
	}
	db := postgres.New(f.s.DB)
	ins, err := jobs.NewInserter(f.s.DB)
	if err != nil {
		t.Fatal(err)
	}
	svc := verify.NewService(verify.Config{}, verify.Deps{Tx: db, Store: db, Notifier: webhook.NewNotifier(db, ins, 0), Audit: db})
	rs, errs := svc.RecordGroup(ctx, cs)
	for i := range 3 {
		if errs[i] != nil {
			t.Fatalf("check %d: %v", i, errs[i])
		}
	}
	if !apperr.Is(errs[3], apperr.NotFound) {
		t.Fatalf("check of a missing integration: %v, want NotFound", errs[3])
	}
	if !rs[0].Changed() || rs[0].Integration.State != newState || rs[0].Previous != ts[0].state {
		t.Fatalf("new outcome: %+v", rs[0])
	}
	if rs[1].Changed() || rs[1].Integration.LastCheckTime == nil || !rs[1].Integration.LastCheckTime.Equal(end) {
		t.Fatalf("unchanged: %+v", rs[1])
	}
	if rs[2].Changed() || rs[2].Integration.State != ts[2].state {
		t.Fatalf("stale: %+v", rs[2])
	}
	for i, want := range []struct {
		state     integration.State
		lastCheck bool
	}{{newState, true}, {ts[1].state, true}, {ts[2].state, false}} {
		var state integration.State
		var last *time.Time
		if err := f.s.DB.QueryRow(ctx, `select state, last_check_time from integrations where id = $1`, ts[i].n.Integration).Scan(&state, &last); err != nil {
			t.Fatal(err)
		}
		if state != want.state || (last != nil && last.Equal(end)) != want.lastCheck {
			t.Fatalf("integration %d: state %s, last check %v; want %s, moved %v", i, state, last, want.state, want.lastCheck)
		}
	}
	if n := countRows(t, f.s, "checks") - checksBefore; n != 3 {
		t.Fatalf("%d check rows written, want 3 (the missing integration's not)", n)
	}
	if n := countRows(t, f.s, "webhook_deliveries") - deliveriesBefore; n != 1 {
		t.Fatalf("%d deliveries queued, want 1 (the new outcome)", n)
	}

	// The fast path's expectations for a state change, at the store: the
	// integration's version and state as read, and the active credential
	// (ID and end) that its event carries. Any of them changed since the
	// check read it: nothing written (the full path decides again).
	tg := ts[1]
	var version int64
	var cred uuid.UUID
	var credEnd *time.Time
	if err := f.s.DB.QueryRow(ctx, `select i.version, c.id, c.end_time from integrations i join credentials c
		on c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active' where i.id = $1`,
		tg.n.Integration).Scan(&version, &cred, &credEnd); err != nil {
		t.Fatal(err)
	}
	otherEnd := time.Now().Add(24 * time.Hour)
	for _, tc := range []struct {
		name  string
		e     verify.Expected
		wrote bool
	}{
		{"another state than read", verify.Expected{Version: version, State: integration.StatePropagating, EventCredential: cred, EventCredentialEnd: credEnd}, false},
		{"another version than read", verify.Expected{Version: version + 1, State: tg.state, EventCredential: cred, EventCredentialEnd: credEnd}, false},
		{"another active credential than read", verify.Expected{Version: version, State: tg.state, EventCredential: uuid.Must(uuid.NewV7()), EventCredentialEnd: credEnd}, false},
		{"no active credential read", verify.Expected{Version: version, State: tg.state}, false},
		{"another end than read", verify.Expected{Version: version, State: tg.state, EventCredential: cred, EventCredentialEnd: &otherEnd}, false},
		{"as read", verify.Expected{Version: version, State: tg.state, EventCredential: cred, EventCredentialEnd: credEnd}, true},
	} {
		tc.e.Check = mk(tg, newState, version)
		written, err := db.RecordExpectedMany(ctx, db.Conn(), []verify.Expected{tc.e})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var state integration.State
		if err := f.s.DB.QueryRow(ctx, `select state from integrations where id = $1`, tg.n.Integration).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if (len(written) == 1) != tc.wrote || (state == newState) != tc.wrote {
			t.Fatalf("%s: wrote %v, state %s; want written %v", tc.name, written, state, tc.wrote)
		}
	}
}
