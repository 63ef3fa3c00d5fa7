package e2e

// Customer-managed credentials (issue 9 item 3): UpdateIntegration keeps
// the current secret as the fallback until the new one verifies, and the
// expiry window is announced once per customer-managed credential.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// integrationRows is the integration's own rows (the integration, its
// credentials, its checks, webhook deliveries) as text, to prove a refused
// update wrote none of them.
func integrationRows(t *testing.T, s *stack.Stack, name string) string {
	t.Helper()
	n, err := resource.ParseIntegration("name", name)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, q := range []string{
		`select row_to_json(x)::text from integrations x where organization_id = $1 and id = $2`,
		`select row_to_json(x)::text from credentials x where organization_id = $1 and integration_id = $2 order by id`,
		`select row_to_json(x)::text from checks x where organization_id = $1 and integration_id = $2 order by id`,
		`select row_to_json(x)::text from webhook_deliveries x where organization_id = $1 and $2::uuid is not null order by id`,
	} {
		rows, err := s.DB.Query(context.Background(), q, n.Org, n.Integration)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// vaultCredentials lists the credential IDs that have a secret in Vault
// under the integration.
func vaultCredentials(t *testing.T, s *stack.Stack, name string) []string {
	t.Helper()
	n, err := resource.ParseIntegration("name", name)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.Vault.Client.Logical().List(fmt.Sprintf("%s/metadata/dzconnect/organizations/%s/integrations/%s/credentials",
		s.Vault.Mount, n.Org, n.Integration))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if sec != nil {
		keys, _ := sec.Data["keys"].([]any)
		for _, k := range keys {
			ids = append(ids, fmt.Sprint(k))
		}
	}
	return ids
}

func credentialID(c *v1.IntegrationCredential) string {
	return c.GetName()[strings.LastIndex(c.GetName(), "/")+1:]
}

func activeCredential(t *testing.T, in *v1.Integration) *v1.IntegrationCredential {
	t.Helper()
	for _, c := range in.GetCredentials() {
		if c.GetState() == v1.CredentialState_CREDENTIAL_STATE_ACTIVE {
			return c
		}
	}
	t.Fatalf("no active credential in %v", in.GetCredentials())
	return nil
}

func errorReason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// wantNoLeak fails when secret is in the Postgres dump, the server's logs
// or any of the texts.
func wantNoLeak(t *testing.T, s *stack.Stack, secret string, texts ...string) {
	t.Helper()
	if strings.Contains(dumpDatabase(t, s), secret) {
		t.Error("the secret is in the Postgres dump")
	}
	if strings.Contains(s.Logs.String(), secret) {
		t.Error("the secret is in the logs")
	}
	for _, x := range texts {
		if strings.Contains(x, secret) {
			t.Errorf("the secret is in a response: %.200s", x)
		}
	}
}

// TestUpdateWrongSecretKeepsIntegration: a mistyped secret is tried,
// refused naming client_secret with Microsoft's code, and discarded; the
// integration stays healthy on its current secret and nothing but the
// audit event (and the queued destruction of the refused value) is
// written.
func TestUpdateWrongSecretKeepsIntegration(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--secret-verify-wait", "1s", "--webhook-workers", "0")
	in, _ := f.fresh(t).app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	wantOutcome(t, f.fresh(t).check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	c := f.s.Clients()
	before, err := c.Integrations.GetIntegration(f.fresh(t).org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	rows := integrationRows(t, f.s, in.GetName())
	audits := countRows(t, f.s, "audit_events")

	wrong := "wrong~" + strings.ReplaceAll(uuid.NewString(), "-", "")
	_, err = c.Integrations.UpdateIntegration(f.fresh(t).org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration:  &v1.Integration{Name: in.GetName(), Etag: before.GetIntegration().GetEtag(), DisplayName: "Renamed"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
		ClientSecret: wrong,
	})
	st := wantCode(t, err, codes.InvalidArgument)
	wantViolation(t, err, "client_secret")
	if !strings.Contains(st.Message(), "AADSTS7000215") || errorReason(err) != "CREDENTIAL_REFUSED" {
		t.Fatalf("refusal %q (%s) lacks Microsoft's code or the reason", st.Message(), errorReason(err))
	}

	if got := integrationRows(t, f.s, in.GetName()); got != rows {
		t.Fatalf("a refused update changed the integration's rows:\nbefore %s\nafter  %s", rows, got)
	}
	if n := countRows(t, f.s, "audit_events"); n != audits+1 {
		t.Fatalf("%d audit events, want %d (the refused call's)", n, audits+1)
	}
	after, err := c.Integrations.GetIntegration(f.fresh(t).org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil || after.GetIntegration().GetEtag() != before.GetIntegration().GetEtag() ||
		after.GetIntegration().GetState() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("after the refusal: %v %v", after, err)
	}
	// The refused value is destroyed (queued in the refusal's transaction).
	waitJobs(t, f.s, "destroy_secret")
	active := activeCredential(t, after.GetIntegration())
	if ids := vaultCredentials(t, f.s, in.GetName()); len(ids) != 1 || ids[0] != credentialID(active) {
		t.Fatalf("Vault holds %v, want only the active credential %s", ids, credentialID(active))
	}
	// The current secret is still the one in use.
	wantOutcome(t, f.fresh(t).check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	wantNoLeak(t, f.s, wrong, st.Message(), fmt.Sprint(st.Details()))
}

// TestUpdateRightSecretSwitches: a working new secret is verified, becomes
// active (the trial is the integration's check), and the one it replaced
// is removed and destroyed in Vault; the response says to delete it in
// Entra. The next check works with only the new secret valid in Entra.
func TestUpdateRightSecretSwitches(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--webhook-workers", "0")
	// The first secret expires in msftsim within the hour: after the clock
	// moves past it, only the new secret works.
	in, creds := f.fresh(t).app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles, SecretLifetime: "1h"}, nil)
	wantOutcome(t, f.fresh(t).check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	c := f.s.Clients()
	cur, err := c.Integrations.GetIntegration(f.fresh(t).org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	old := activeCredential(t, cur.GetIntegration())
	oldPath := activeSecretPath(cur.GetIntegration())
	secret := f.addPassword(t, creds.ObjectID)

	// A stale etag (a rename came first): Aborted before anything is written.
	stale := cur.GetIntegration().GetEtag()
	renamed, err := c.Integrations.UpdateIntegration(f.fresh(t).org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: in.GetName(), Etag: stale, DisplayName: "Renamed"},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	if err != nil {
		t.Fatal(err)
	}
	cur.Integration = renamed.GetIntegration()
	rows := integrationRows(t, f.s, in.GetName())
	_, err = c.Integrations.UpdateIntegration(f.fresh(t).org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: in.GetName(), Etag: stale}, UpdateMask: &fieldmaskpb.FieldMask{}, ClientSecret: secret})
	wantCode(t, err, codes.Aborted)
	if got := integrationRows(t, f.s, in.GetName()); got != rows {
		t.Fatal("an update with a stale etag wrote rows")
	}

	expire := time.Now().Add(700 * 24 * time.Hour).UTC().Truncate(time.Second)
	resp, err := c.Integrations.UpdateIntegration(f.fresh(t).org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: in.GetName(), Etag: cur.GetIntegration().GetEtag(),
			Credential: &v1.Credential{ExpireTime: timestamppb.New(expire), Hint: secret[:3]}},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"credential.expire_time", "credential.hint"}},
		ClientSecret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetIntegration()
	now := activeCredential(t, got)
	if credentialID(now) == credentialID(old) || now.GetHint() != secret[:3] || !now.GetEndTime().AsTime().Equal(expire) ||
		got.GetEtag() == cur.GetIntegration().GetEtag() || got.GetState() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("after the switch: %v", got)
	}
	if r := resp.GetReplacedCredential(); r.GetName() != old.GetName() || r.GetState() != v1.CredentialState_CREDENTIAL_STATE_REMOVED {
		t.Fatalf("replaced credential %v, want %s removed", r, old.GetName())
	}
	if !strings.Contains(resp.GetNextStep(), creds.ClientID) || !strings.Contains(resp.GetNextStep(), "Delete the previous client secret") {
		t.Fatalf("next step %q", resp.GetNextStep())
	}
	// The trial was recorded as the integration's check.
	checks, err := c.Integrations.ListChecks(f.fresh(t).org.ViewerCtx, &v1.ListChecksRequest{Parent: in.GetName()})
	if err != nil || len(checks.GetChecks()) != 2 || checks.GetChecks()[0].GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("checks after the switch: %v %v", checks, err)
	}
	// Vault: the new value at the new credential's path; the old one destroyed.
	if v, ok := secretAt(t, f.s, activeSecretPath(got), 1); !ok || v != secret {
		t.Fatal("the new credential's Vault value is not the new secret")
	}
	waitJobs(t, f.s, "destroy_secret")
	if _, err := f.s.Vault.KV().GetMetadata(context.Background(), "dzconnect/"+oldPath); err == nil {
		t.Fatalf("the replaced secret survives in Vault at %s", oldPath)
	}
	if ids := vaultCredentials(t, f.s, in.GetName()); len(ids) != 1 || ids[0] != credentialID(now) {
		t.Fatalf("Vault holds %v, want only %s", ids, credentialID(now))
	}
	// Only the new secret is valid in Entra now: the next check uses it.
	f.sim.Admin().AdvanceClock(2 * time.Hour)
	if err := f.token(t, creds.ClientID, creds.ClientSecret); err == nil || !strings.Contains(err.Error(), "AADSTS7000222") {
		t.Fatalf("the first secret still gets a token from msftsim (%v): the check below would prove nothing", err)
	}
	c2 := f.fresh(t).check(t, in.GetName())
	wantOutcome(t, c2, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	if s := step(t, c2, "secret"); !strings.Contains(s.GetMessage(), "version 1") {
		t.Fatalf("secret step %v", s)
	}
	wantNoLeak(t, f.s, secret, protojson.Format(resp), protojson.Format(checks))
}

// TestExpiryWindowAnnouncedOnce: a customer-managed credential entering
// the window is announced once (event with days left, the credential and
// the exact steps; metrics), however often it is checked; a provisioned
// integration's is not (it renews itself), though its check still warns.
func TestExpiryWindowAnnouncedOnce(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--webhook-workers", "0")
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(f.fresh(t).org.AdminCtx, &v1.CreateWebhookRequest{
		Parent: f.org.Name, Webhook: &v1.Webhook{Url: "https://hooks.example.com/dzconnect",
			Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRING}},
	}); err != nil {
		t.Fatal(err)
	}
	soon := func() *v1.Integration {
		return &v1.Integration{Kind: defenderKind, Credential: &v1.Credential{ExpireTime: timestamppb.New(time.Now().Add(10 * 24 * time.Hour))}}
	}
	in, creds := f.fresh(t).app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, soon())
	var first *v1.Check
	for range 2 {
		c := f.fresh(t).check(t, in.GetName())
		wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
		if first == nil {
			first = c
		}
	}
	st := step(t, first, "expiry")
	for _, want := range []string{creds.ClientID, f.simTID, "--client-secret-file", in.GetName()} {
		if st.GetErrorCode() != "CREDENTIAL_EXPIRING" || !strings.Contains(st.GetRemedy(), want) {
			t.Fatalf("expiry step %v: remedy lacks %q", st, want)
		}
	}
	events := expiringEvents(t, f)
	if len(events) != 1 {
		t.Fatalf("%d credential_expiring events, want 1", len(events))
	}
	ev := events[0]
	cur, err := f.s.Clients().Integrations.GetIntegration(f.fresh(t).org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Integration != in.GetName() || ev.Credential != activeCredential(t, cur.GetIntegration()).GetName() ||
		ev.CredentialDaysLeft == nil || *ev.CredentialDaysLeft != 9 || ev.CredentialExpireTime == nil ||
		!strings.Contains(ev.Remedy, creds.ClientID) || !strings.Contains(ev.Remedy, "UpdateIntegration") {
		t.Fatalf("event %+v", ev)
	}

	// A provisioned integration (made so in SQL: provisioning is not what
	// this test is about) warns in its check but announces nothing.
	prov, _ := f.fresh(t).app(t, msftsim.AppRequest{DisplayName: "Provisioned", Roles: defenderRoles}, soon())
	n, err := resource.ParseIntegration("name", prov.GetName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DB.Exec(context.Background(), `update integrations set management_mode = 'provisioned' where organization_id = $1 and id = $2`,
		n.Org, n.Integration); err != nil {
		t.Fatal(err)
	}
	pc := f.fresh(t).check(t, prov.GetName())
	wantOutcome(t, pc, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
	if s := step(t, pc, "expiry"); s.GetErrorCode() != "CREDENTIAL_EXPIRING" || !strings.Contains(s.GetRemedy(), "renews") {
		t.Fatalf("provisioned expiry step %v", s)
	}
	if got := expiringEvents(t, f); len(got) != 1 {
		t.Fatalf("%d credential_expiring events after the provisioned check, want still 1", len(got))
	}

	metrics, err := httpGet(f.s.InternalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"dzconnect_credential_expiry_announcements_total 1\n",
		`dzconnect_credentials_expiring{management="customer-managed",window="30d"} 1`,
		`dzconnect_credentials_expiring{management="provisioned",window="30d"} 1`,
		`dzconnect_credential_min_days_left{management="customer-managed"} 9.9`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, n.Integration.String()) {
		t.Error("/metrics names an integration")
	}
}

// expiringEvents returns the credential_expiring events queued for the
// fixture's organization.
func expiringEvents(t *testing.T, f verifyFixture) []event.Event {
	t.Helper()
	rows, err := f.s.DB.Query(context.Background(), `select payload from webhook_deliveries where event = $1 order by id`, event.CredentialExpiring)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// token asks msftsim's Entra for a Graph token with a client secret.
func (f verifyFixture) token(t *testing.T, clientID, secret string) error {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(f.simTID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.sim.Endpoints().Authority},
			Transport: f.sim.HTTPClient()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{msftsim.ResourceGraph + "/.default"}})
	return err
}

// fresh returns f with new contexts for its organization's keys: each
// lasts 30 s from its making, and these tests outlive one on a busy
// machine.
func (f verifyFixture) fresh(t *testing.T) verifyFixture {
	f.org.OperatorCtx = stack.Ctx(t, f.org.Operator)
	f.org.ViewerCtx = stack.Ctx(t, f.org.Viewer)
	f.org.AdminCtx = stack.Ctx(t, f.org.Admin)
	return f
}
