package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// credName is a credential's resource name.
func credName(integ string, c credRow) string { return integ + "/credentials/" + c.id.String() }

func (f provisionFixture) ack(t *testing.T, key, integ, consumer, cred string) *v1.AcknowledgeCredentialResponse {
	t.Helper()
	r, err := v1.NewTokenServiceClient(f.s.Conn).AcknowledgeCredential(stack.Ctx(t, key), &v1.AcknowledgeCredentialRequest{
		Integration: integ, Consumer: consumer, Credential: cred})
	if err != nil {
		t.Fatalf("AcknowledgeCredential %s %s: %v", consumer, cred, err)
	}
	return r
}

// staleDeliveries returns the credential.consumer_stale payloads queued
// for the organization's webhooks.
func (f provisionFixture) staleDeliveries(t *testing.T) []map[string]any {
	t.Helper()
	rows, err := f.s.DB.Query(context.Background(), `select payload from webhook_deliveries where event = 'credential.consumer_stale' order by id`)
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

func (f provisionFixture) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(f.s.InternalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

// TestTokensAcrossRotation: a rotation's activation invalidates the cached
// token (the next issuance uses the new credential) while a consumer
// holding a token of the old one keeps using it until its expiry; the
// acknowledgement of the new credential by every registered consumer
// brings the old one's removal forward; a consumer still on the old one
// is announced (webhook event and metric) before its removal.
func TestTokensAcrossRotation(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true, "--webhook-workers", "0")
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	consumer := newConsumerKey(t, f.s, f.org.AdminCtx, f.org.Name)
	tokens := v1.NewTokenServiceClient(f.s.Conn)
	issue := func() *v1.IssueAccessTokenResponse {
		t.Helper()
		r, err := tokens.IssueAccessToken(stack.Ctx(t, consumer), &v1.IssueAccessTokenRequest{Integration: name, Api: v1.MicrosoftApi_MICROSOFT_API_GRAPH})
		if err != nil {
			t.Fatalf("IssueAccessToken: %v\nlogs:\n%s", err, f.s.Logs.String())
		}
		return r
	}
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(f.org.AdminCtx, &v1.CreateWebhookRequest{Parent: f.org.Name,
		Webhook: &v1.Webhook{Url: "https://hooks.example.com/dz", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_CONSUMER_STALE}}}); err != nil {
		t.Fatal(err)
	}

	c1 := byState(f.credentials(t, name), "active")[0]
	old := issue()
	if old.GetCredential() != credName(name, c1) {
		t.Fatalf("token from %s, want %s", old.GetCredential(), credName(name, c1))
	}
	// Two platforms that read the secret register with the active one.
	for _, p := range []string{"siem", "soar"} {
		r := f.ack(t, consumer, name, p, credName(name, c1))
		if r.GetRetirementBroughtForward() || r.GetConsumer().GetConsumer() != p {
			t.Fatalf("ack %s: %v", p, r)
		}
	}
	// Bad acknowledgements: InvalidArgument naming the field, nothing written.
	_, err := tokens.AcknowledgeCredential(stack.Ctx(t, consumer), &v1.AcknowledgeCredentialRequest{Integration: name, Consumer: "Bad Name", Credential: credName(name, c1)})
	wantViolation(t, err, "consumer")
	_, err = tokens.AcknowledgeCredential(stack.Ctx(t, consumer), &v1.AcknowledgeCredentialRequest{Integration: name, Consumer: "siem", Credential: "organizations/x/credentials/y"})
	wantViolation(t, err, "credential")
	if n := countRows(t, f.s, "credential_consumers"); n != 2 {
		t.Fatalf("%d consumers after invalid acknowledgements, want 2", n)
	}

	// Rotation 1, overlap one hour.
	f.setOverlap(t, time.Hour)
	if done := f.wait(t, f.rotate(t, name, "").GetName()); done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("rotate: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	c2 := byState(f.credentials(t, name), "active")[0]
	// The next issuance uses the new credential: another token.
	fresh := issue()
	if fresh.GetCredential() != credName(name, c2) || fresh.GetAccessToken() == old.GetAccessToken() {
		t.Fatalf("after the rotation: credential %s (want %s), same token %v", fresh.GetCredential(), credName(name, c2),
			fresh.GetAccessToken() == old.GetAccessToken())
	}
	if st := graphStatus(t, f.sim, fresh.GetAccessToken()); st != http.StatusOK {
		t.Fatalf("Graph with the new token: %d", st)
	}

	// One consumer moves: the overlap runs on; the second: removal now.
	if r := f.ack(t, consumer, name, "siem", credName(name, c2)); r.GetRetirementBroughtForward() {
		t.Fatal("brought forward while soar is still on the old credential")
	}
	if r := f.ack(t, consumer, name, "soar", credName(name, c2)); !r.GetRetirementBroughtForward() {
		t.Fatal("the last acknowledgement did not bring the removal forward")
	}
	f.waitCredential(t, name, c1.id, "removed") // within seconds, not the hour
	app := f.app(t, in)
	if len(app.Passwords) != 1 || !strings.EqualFold(app.Passwords[0].KeyID, c2.keyID) {
		t.Fatalf("passwords after the early removal: %+v", app.Passwords)
	}
	// The old credential is gone from Entra; its token works until it expires.
	if st := graphStatus(t, f.sim, old.GetAccessToken()); st != http.StatusOK {
		t.Fatalf("Graph with the old credential's token after its removal: %d", st)
	}
	// A removed credential cannot be acknowledged.
	_, err = tokens.AcknowledgeCredential(stack.Ctx(t, consumer), &v1.AcknowledgeCredentialRequest{Integration: name, Consumer: "siem", Credential: credName(name, c1)})
	wantCode(t, err, codes.FailedPrecondition)

	// Rotation 2, overlap 40 seconds: soar does not move and is announced
	// in the second half (the overlap is shorter than twice the 24h
	// margin), before the removal: the second half is longer than the
	// announcing job's 15-second period.
	f.setOverlap(t, 40*time.Second)
	if done := f.wait(t, f.rotate(t, name, "").GetName()); done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("rotate: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	c3 := byState(f.credentials(t, name), "active")[0]
	f.ack(t, consumer, name, "siem", credName(name, c3))
	deadline := time.Now().Add(time.Minute)
	var stale []map[string]any
	for time.Now().Before(deadline) {
		if stale = f.staleDeliveries(t); len(stale) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling for the leader's periodic job
	}
	if len(stale) != 1 || stale[0]["consumer"] != "soar" || stale[0]["credential"] != credName(name, c2) ||
		stale[0]["retiring_credential"] != credName(name, c2) || stale[0]["integration"] != name {
		t.Fatalf("stale announcements: %v\nlogs:\n%s", stale, f.s.Logs.String())
	}
	announced := false
	for _, c := range f.credentials(t, name) {
		if c.id == c2.id {
			announced = c.state == "retiring" // announced before the removal
		}
	}
	if !announced {
		t.Fatal("the announcement came after the removal")
	}
	if v := f.metric(t, "dzconnect_credential_consumers_stale_total"); v != "1" {
		t.Fatalf("dzconnect_credential_consumers_stale_total %q", v)
	}
	// The overlap ends: removed as usual; announced once only.
	f.waitCredential(t, name, c2.id, "removed")
	if n := len(f.staleDeliveries(t)); n != 1 {
		t.Fatalf("%d announcements", n)
	}

	// The old credential's token still works (it expires at
	// old.expire_time like any token; msftsim expires tokens only when
	// both its clock and the wall clock pass their expiry, so the test
	// cannot wait for it).
	if st := graphStatus(t, f.sim, old.GetAccessToken()); st != http.StatusOK {
		t.Fatalf("Graph with the first credential's token after both rotations: %d", st)
	}
}
