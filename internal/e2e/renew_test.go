package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/jackc/pgx/v5"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

const day = 24 * time.Hour

// renewFixture: a provisioning fixture whose server runs the renewal job
// every second with a shiftable clock (--test-clock-file), and whose
// customer tenant's app-management policy caps secrets at 60 days.
type renewFixture struct {
	provisionFixture
	clockFile string
	shift     time.Duration
}

func newRenewFixture(t *testing.T, extraArgs ...string) *renewFixture {
	t.Helper()
	file := filepath.Join(t.TempDir(), "clock")
	f := &renewFixture{clockFile: file}
	f.provisionFixture = newProvisionFixture(t, true, append([]string{"--renewal-interval=1s", "--renewal-jitter=0",
		"--test-clock-file", file}, extraArgs...)...)
	if err := f.sim.Admin().SetPolicy(f.simTID, msftsim.PolicySpec{PasswordMaxLifetime: "1440h"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// advance moves msftsim's clock and dzconnect's (the renewal's) by d.
func (f *renewFixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	f.sim.Admin().AdvanceClock(d)
	f.shift += d
	if err := os.WriteFile(f.clockFile, []byte(f.shift.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// renewRuns counts the renewal job's completed runs.
func renewRuns(t *testing.T, f provisionFixture) int {
	t.Helper()
	var n int
	if err := f.s.DB.QueryRow(context.Background(), `select count(*) from river_job where kind = 'renew_credentials' and state = 'completed'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRenewRuns waits until the renewal job has completed n more runs
// (each started after the call, but the first).
func waitRenewRuns(t *testing.T, f provisionFixture, n int) {
	t.Helper()
	want := renewRuns(t, f) + n
	deadline := time.Now().Add(time.Minute)
	for renewRuns(t, f) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the renewal job did not run %d more times within a minute\nlogs:\n%s", n, f.s.Logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling River's job rows
	}
}

// rotations lists the rotate operations on the integration, oldest first.
func rotations(t *testing.T, f provisionFixture, name string) []*v1.Operation {
	t.Helper()
	resp, err := f.ops.ListOperations(f.viewer(t), &v1.ListOperationsRequest{Parent: f.org.Name,
		Filter: `kind = "rotate" AND target = "` + name + `"`})
	if err != nil {
		t.Fatalf("ListOperations: %v", err)
	}
	ops := resp.GetOperations()
	for i, j := 0, len(ops)-1; i < j; i, j = i+1, j-1 {
		ops[i], ops[j] = ops[j], ops[i]
	}
	return ops
}

// waitRotations waits until the integration has n rotate operations.
func waitRotations(t *testing.T, f provisionFixture, name string, n int) []*v1.Operation {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ops := rotations(t, f, name)
		if len(ops) >= n {
			return ops
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rotations of %s within a minute, want %d\nlogs:\n%s", len(ops), name, n, f.s.Logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling the operations
	}
}

func (f provisionFixture) checkHealthy(t *testing.T, name, when string) {
	t.Helper()
	chk, err := f.s.Clients().Integrations.CheckIntegration(f.operator(t), &v1.CheckIntegrationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if chk.GetCheck().GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("%s: check %v", when, chk.GetCheck())
	}
}

// deliveriesOf lists the payloads of the organization's webhook deliveries
// of one event type.
func deliveriesOf(t *testing.T, f provisionFixture, eventType string) []map[string]any {
	t.Helper()
	org := strings.TrimPrefix(f.org.Name, "organizations/")
	rows, err := f.s.DB.Query(context.Background(), `select payload from webhook_deliveries where organization_id = $1 and event = $2 order by id`,
		org, eventType)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// subscribe creates a webhook for the renewal's events (deliveries are
// recorded whether or not the receiver answers).
func (f provisionFixture) subscribeRenewal(t *testing.T) {
	t.Helper()
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(f.org.AdminCtx, &v1.CreateWebhookRequest{
		Parent: f.org.Name, Webhook: &v1.Webhook{Url: "http://127.0.0.1:9/hook", Events: []v1.WebhookEvent{
			v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_RENEWAL_FAILED, v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRY_MISMATCH}},
	}); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
}

func auditActors(t *testing.T, f provisionFixture, resourceName string) []string {
	t.Helper()
	rows, err := f.s.DB.Query(context.Background(), `select actor from audit_events where resource = $1 order by id`, resourceName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestRenewAutomatically: a provisioned integration whose 60-day secret is
// outside the 30-day threshold is not renewed; once both clocks move 35
// days on, the renewal job rotates it (an operation started by the
// system, in ListOperations): the new credential active, the old one
// retiring, the integration healthy before, during and after; the new
// credential is not renewed again.
func TestRenewAutomatically(t *testing.T) {
	t.Parallel()
	f := newRenewFixture(t)
	if _, err := f.s.Clients().Orgs.UpdateOrganization(f.s.Admin(t), &v1.UpdateOrganizationRequest{
		Organization: &v1.Organization{Name: f.org.Name, CredentialOverlap: durationpb.New(time.Hour)},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"credential_overlap"}}}); err != nil {
		t.Fatal(err)
	}
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	old := byState(f.credentials(t, name), "active")[0]
	if end := in.GetCredential().GetExpireTime().AsTime(); time.Until(end) > 61*day || time.Until(end) < 50*day {
		t.Fatalf("the policy did not fit the secret to about 60 days: expires %s", end)
	}

	// Outside the threshold: runs read Entra, start nothing.
	waitRenewRuns(t, f.provisionFixture, 3)
	if ops := rotations(t, f.provisionFixture, name); len(ops) != 0 {
		t.Fatalf("renewed outside the threshold: %v", ops)
	}
	var read *time.Time
	if err := f.s.DB.QueryRow(context.Background(), `select expiry_read_time from credentials where id = $1`, old.id).Scan(&read); err != nil || read == nil {
		t.Fatalf("expiry date not read from Entra: %v %v", read, err)
	}
	f.checkHealthy(t, name, "before")

	// 35 days on: 25 left, within the threshold.
	f.advance(t, 35*day)
	f.checkHealthy(t, name, "after the clocks moved")
	ops := waitRotations(t, f.provisionFixture, name, 1)
	op := f.wait(t, ops[0].GetName())
	if op.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("renewal rotation: %v\nlogs:\n%s", op, f.s.Logs.String())
	}
	cs := f.credentials(t, name)
	active, retiring := byState(cs, "active"), byState(cs, "retiring")
	if len(active) != 1 || len(retiring) != 1 || retiring[0].id != old.id || active[0].id == old.id {
		t.Fatalf("credentials after renewal: %+v", cs)
	}
	f.checkHealthy(t, name, "after renewal")
	app := f.app(t, f.integration(t, op))
	if len(app.Passwords) != 2 || !f.sim.Admin().SecretMatches(f.simTID, app.ObjectID, active[0].keyID, f.vaultSecret(t, f.integration(t, op))) {
		t.Fatalf("Entra after renewal: %+v", app.Passwords)
	}
	// Started by the system: the operation's audit event, and its
	// parameters say renewal.
	opID := op.GetName()[strings.LastIndex(op.GetName(), "/")+1:]
	var params []byte
	if err := f.s.DB.QueryRow(context.Background(), `select params from operations where id = $1`, opID).Scan(&params); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(params), `"trigger": "renewal"`) && !strings.Contains(string(params), `"trigger":"renewal"`) {
		t.Fatalf("operation params %s", params)
	}
	if actors := auditActors(t, f.provisionFixture, name); len(actors) == 0 || actors[len(actors)-1] != audit.SystemActor {
		t.Fatalf("audit actors of %s: %v", name, actors)
	}

	// The new 60-day credential is outside the threshold: no second
	// renewal.
	waitRenewRuns(t, f.provisionFixture, 3)
	if ops := rotations(t, f.provisionFixture, name); len(ops) != 1 {
		t.Fatalf("%d rotations after renewal, want 1", len(ops))
	}
}

// TestRenewFailureBackoff: a renewal whose rotation fails (the application
// disabled: the new secret gets no token) is announced and not restarted
// while the clocks stay within the day; a day later it is, and succeeds.
func TestRenewFailureBackoff(t *testing.T) {
	t.Parallel()
	f := newRenewFixture(t)
	f.subscribeRenewal(t)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	old := byState(f.credentials(t, name), "active")[0]
	if err := f.sim.Admin().SetAppEnabled(f.simTID, in.GetApplication().GetClientId(), false); err != nil {
		t.Fatal(err)
	}
	f.advance(t, 35*day)
	first := f.wait(t, waitRotations(t, f.provisionFixture, name, 1)[0].GetName())
	if first.GetState() != v1.OperationState_OPERATION_STATE_FAILED || first.GetError().GetStep() != provision.RotateStepVerify {
		t.Fatalf("renewal rotation: %v", first)
	}
	// Announced: credential_renewal_failed with the operation and the next
	// attempt a day later.
	var ev map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for ev == nil {
		if evs := deliveriesOf(t, f.provisionFixture, "integration.credential_renewal_failed"); len(evs) > 0 {
			ev = evs[0]
		} else if time.Now().After(deadline) {
			t.Fatal("no credential_renewal_failed event")
		} else {
			time.Sleep(100 * time.Millisecond) // polling the delivery rows
		}
	}
	if ev["operation"] != first.GetName() || ev["integration"] != name || ev["next_attempt_time"] == nil ||
		!strings.HasSuffix(ev["credential"].(string), old.id.String()) {
		t.Fatalf("event %v", ev)
	}
	// Not restarted in a loop: several runs, still one rotation.
	waitRenewRuns(t, f.provisionFixture, 4)
	if ops := rotations(t, f.provisionFixture, name); len(ops) != 1 {
		t.Fatalf("%d rotations after a failed renewal within the day, want 1", len(ops))
	}
	if a := byState(f.credentials(t, name), "active"); len(a) != 1 || a[0].id != old.id {
		t.Fatalf("the old credential is no longer active: %+v", a)
	}
	// Fixed, and a day later: renewed.
	if err := f.sim.Admin().SetAppEnabled(f.simTID, in.GetApplication().GetClientId(), true); err != nil {
		t.Fatal(err)
	}
	f.advance(t, day+time.Hour)
	ops := waitRotations(t, f.provisionFixture, name, 2)
	if done := f.wait(t, ops[1].GetName()); done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("second renewal: %v", done)
	}
	if r := byState(f.credentials(t, name), "retiring"); len(r) != 1 || r[0].id != old.id {
		rows, _ := f.s.DB.Query(context.Background(), `select kind || ' ' || state || ' ' || params::text from operations order by create_time`)
		opsDump, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		rows2, _ := f.s.DB.Query(context.Background(), `select id::text || ' ' || state || ' ' || source || ' ' || coalesce(key_id::text,'') || ' ' || create_time::text from credentials order by create_time`)
		credDump, _ := pgx.CollectRows(rows2, pgx.RowTo[string])
		rows3, _ := f.s.DB.Query(context.Background(), `select kind || ' ' || state || ' ' || args::text || ' ' || coalesce(errors::text, '') from river_job where kind like 'retire%'`)
		jobsDump, _ := pgx.CollectRows(rows3, pgx.RowTo[string])
		t.Fatalf("after the second renewal (old %s): %+v\nops %v\ncreds %v\njobs %v", old.id, f.credentials(t, name), opsDump, credDump, jobsDump)
	}
	f.checkHealthy(t, name, "after the second renewal")
}

// TestRenewRespectsRetryAfter: the tenant answers the first Graph request
// after the clocks move with 429 + Retry-After; the renewal still happens,
// and nothing calls the tenant again before Retry-After ends.
func TestRenewRespectsRetryAfter(t *testing.T) {
	t.Parallel()
	f := newRenewFixture(t)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	f.sim.Admin().SetFaults(faults.Config{Tenants: map[string]faults.Scope{f.simTID: {Routes: map[string]faults.Rule{
		"graph.*": {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 2}},
	}}}})
	f.sim.Admin().ResetCounters()
	f.advance(t, 35*day)
	op := f.wait(t, waitRotations(t, f.provisionFixture, name, 1)[0].GetName())
	if op.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("renewal under a throttle: %v", op)
	}
	throttled := false
	for _, e := range f.sim.Admin().Requests(0) {
		if e.Tenant == f.simTID && e.Status == 429 {
			throttled = true
		}
	}
	if !throttled {
		t.Fatal("the tenant never answered 429")
	}
	if n := f.sim.Admin().TotalEarlyRetries(); n != 0 {
		t.Fatalf("%d requests came back before Retry-After ended", n)
	}
}

// TestRenewReadsExpiryFromEntra: a recorded expiry date that differs from
// Entra's is corrected to Entra's by the renewal job, audited as by the
// system and announced (credential_expiry_mismatch).
func TestRenewReadsExpiryFromEntra(t *testing.T) {
	t.Parallel()
	f := newRenewFixture(t)
	f.subscribeRenewal(t)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	cred := byState(f.credentials(t, name), "active")[0]
	var entra time.Time
	for _, p := range f.app(t, in).Passwords {
		if strings.EqualFold(p.KeyID, cred.keyID) {
			entra = p.End
		}
	}
	if entra.IsZero() {
		t.Fatal("no password in Entra")
	}
	// The record drifts (never read since).
	wrong := time.Now().Add(500 * day).UTC().Truncate(time.Second)
	if _, err := f.s.DB.Exec(context.Background(), `update credentials set end_time = $2, expiry_read_time = null where id = $1`,
		cred.id, wrong); err != nil {
		t.Fatal(err)
	}
	credName := name + "/credentials/" + cred.id.String()
	deadline := time.Now().Add(time.Minute)
	for {
		var end time.Time
		if err := f.s.DB.QueryRow(context.Background(), `select end_time from credentials where id = $1`, cred.id).Scan(&end); err != nil {
			t.Fatal(err)
		}
		if end.Sub(entra).Abs() < time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expiry not corrected: recorded %s, Entra %s\nlogs:\n%s", end, entra, f.s.Logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling the row
	}
	if got := f.integration(t, &v1.Operation{Target: name}).GetCredential().GetExpireTime().AsTime(); got.Sub(entra).Abs() >= time.Second {
		t.Fatalf("GetIntegration's expire_time %s, Entra's %s", got, entra)
	}
	if actors := auditActors(t, f.provisionFixture, credName); len(actors) != 1 || actors[0] != audit.SystemActor {
		t.Fatalf("audit of %s: %v", credName, actors)
	}
	evs := deliveriesOf(t, f.provisionFixture, "integration.credential_expiry_mismatch")
	if len(evs) != 1 || evs[0]["credential"] != credName || evs[0]["recorded_expire_time"] == nil || evs[0]["credential_expire_time"] == nil {
		t.Fatalf("expiry mismatch events: %v", evs)
	}
	// Nothing renewed: 60 days left.
	if ops := rotations(t, f.provisionFixture, name); len(ops) != 0 {
		t.Fatalf("rotations: %v", ops)
	}
}

// TestOrganizationCredentialSettings: the overlap and the renewal threshold
// through UpdateOrganization: defaults, valid updates with the etag,
// InvalidArgument naming the field with nothing written, a stale etag,
// and dzctl.
func TestOrganizationCredentialSettings(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	org := s.NewOrg(t, "Settings")
	c := s.Clients().Orgs
	ctx := s.Admin(t)
	got, err := c.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: org.Name})
	if err != nil {
		t.Fatal(err)
	}
	o := got.GetOrganization()
	if o.GetCredentialOverlap().AsDuration() != 7*day || o.GetCredentialRenewalThreshold().AsDuration() != 30*day {
		t.Fatalf("defaults: %v", o)
	}
	update := func(ov, th *durationpb.Duration, etag string, paths ...string) (*v1.Organization, error) {
		r, err := c.UpdateOrganization(s.Admin(t), &v1.UpdateOrganizationRequest{
			Organization: &v1.Organization{Name: org.Name, Etag: etag, CredentialOverlap: ov, CredentialRenewalThreshold: th},
			UpdateMask:   &fieldmaskpb.FieldMask{Paths: paths}})
		return r.GetOrganization(), err
	}
	// Valid, with the etag.
	o2, err := update(durationpb.New(3*day), durationpb.New(45*day), o.GetEtag(), "credential_overlap", "credential_renewal_threshold")
	if err != nil {
		t.Fatal(err)
	}
	if o2.GetCredentialOverlap().AsDuration() != 3*day || o2.GetCredentialRenewalThreshold().AsDuration() != 45*day || o2.GetEtag() == o.GetEtag() {
		t.Fatalf("after update: %v", o2)
	}
	// Invalid: InvalidArgument naming the field, nothing written.
	for _, tc := range []struct {
		name   string
		ov, th *durationpb.Duration
		paths  []string
		field  string
	}{
		{"overlap too long", durationpb.New(91 * day), nil, []string{"credential_overlap"}, "organization.credential_overlap"},
		{"overlap negative", durationpb.New(-time.Hour), nil, []string{"credential_overlap"}, "organization.credential_overlap"},
		{"overlap not whole seconds", durationpb.New(time.Hour + time.Millisecond), nil, []string{"credential_overlap"}, "organization.credential_overlap"},
		{"threshold too short", nil, durationpb.New(12 * time.Hour), []string{"credential_renewal_threshold"}, "organization.credential_renewal_threshold"},
		{"threshold too long", nil, durationpb.New(181 * day), []string{"credential_renewal_threshold"}, "organization.credential_renewal_threshold"},
		{"threshold not above overlap", nil, durationpb.New(2 * day), []string{"credential_renewal_threshold"}, "organization.credential_renewal_threshold"},
		{"overlap above threshold", durationpb.New(60 * day), nil, []string{"credential_overlap"}, "organization.credential_renewal_threshold"},
		{"masked without a value", nil, nil, []string{"credential_overlap"}, "organization.credential_overlap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := update(tc.ov, tc.th, "", tc.paths...)
			wantViolation(t, err, tc.field)
		})
	}
	after, err := c.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: org.Name})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetOrganization().GetEtag() != o2.GetEtag() || after.GetOrganization().GetCredentialOverlap().AsDuration() != 3*day {
		t.Fatalf("a refused update wrote: %v", after.GetOrganization())
	}
	// A stale etag: Aborted.
	_, err = update(durationpb.New(day), nil, o.GetEtag(), "credential_overlap")
	wantCode(t, err, codes.Aborted)
	// Another organization's admin cannot (service admin only), and an
	// unknown organization is NotFound.
	_, err = c.UpdateOrganization(org.AdminCtx, &v1.UpdateOrganizationRequest{
		Organization: &v1.Organization{Name: org.Name, CredentialOverlap: durationpb.New(day)}})
	wantCode(t, err, codes.PermissionDenied)
	_, err = c.UpdateOrganization(ctx, &v1.UpdateOrganizationRequest{
		Organization: &v1.Organization{Name: resource.Org{Org: uuid.New()}.String(), CredentialOverlap: durationpb.New(day)}})
	wantCode(t, err, codes.NotFound)

	// dzctl.
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": s.GRPCAddr, "DZCONNECT_API_KEY": s.AdminKey}
	app := cli.New(strings.NewReader(""), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	if code := app.Execute(context.Background(), []string{"org", "update", org.Name, "--credential-overlap", "2d", "--renewal-threshold", "40d"}); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "2d") || !strings.Contains(out.String(), "40d") {
		t.Fatalf("dzctl org update:\n%s", out.String())
	}
	out.Reset()
	if code := app.Execute(context.Background(), []string{"org", "update", org.Name, "--renewal-threshold", "soon"}); code == 0 {
		t.Fatal("dzctl accepted --renewal-threshold soon")
	}
	final, err := c.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: org.Name})
	if err != nil {
		t.Fatal(err)
	}
	if final.GetOrganization().GetCredentialOverlap().AsDuration() != 2*day || final.GetOrganization().GetCredentialRenewalThreshold().AsDuration() != 40*day {
		t.Fatalf("after dzctl: %v", final.GetOrganization())
	}
}
