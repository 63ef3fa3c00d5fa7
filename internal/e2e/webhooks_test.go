package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/vault"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

const stateChanged = v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED

// startWebhookStack runs a server whose own delivery worker is off: the
// tests drive a Deliverer with their own clock.
func startWebhookStack(t *testing.T) *stack.Stack {
	return stack.Start(t, stack.Options{ExtraArgs: []string{"--webhook-delivery-interval", "0"}})
}

func newWebhook(t *testing.T, s *stack.Stack, ctx context.Context, org, url string) (*v1.Webhook, string) {
	t.Helper()
	resp, err := v1.NewWebhookServiceClient(s.Conn).CreateWebhook(ctx, &v1.CreateWebhookRequest{
		Parent: org, Webhook: &v1.Webhook{Url: url, Events: []v1.WebhookEvent{stateChanged}},
	})
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	return resp.GetWebhook(), resp.GetSigningSecret()
}

// webhookSecretAt reads a version of a webhook's signing secret from Vault.
func webhookSecretAt(t *testing.T, s *stack.Stack, name string, version int) (string, bool) {
	t.Helper()
	parts := strings.Split(name, "/")
	path := "dzconnect/" + webhook.SecretPath(uuid.MustParse(parts[1]), uuid.MustParse(parts[3]))
	sec, err := s.Vault.KV().GetVersion(context.Background(), path, version)
	if err != nil {
		return "", false
	}
	v, _ := sec.Data["client_secret"].(string)
	return v, true
}

func TestWebhookCRUD(t *testing.T) {
	t.Parallel()
	s := startWebhookStack(t)
	c := v1.NewWebhookServiceClient(s.Conn)
	org := s.NewOrg(t, "Webhooks")
	ctx := org.AdminCtx

	// Invalid input: InvalidArgument naming the field, nothing written.
	before := snapshot(t, s)
	for _, tc := range []struct {
		url    string
		events []v1.WebhookEvent
		field  string
	}{
		{"http://hooks.example.com/x", []v1.WebhookEvent{stateChanged}, "webhook.url"},
		{"https://user:pw@hooks.example.com/x", []v1.WebhookEvent{stateChanged}, "webhook.url"},
		{"ftp://hooks.example.com/x", []v1.WebhookEvent{stateChanged}, "webhook.url"},
		{"https://hooks.example.com/" + strings.Repeat("a", 2048), []v1.WebhookEvent{stateChanged}, "webhook.url"},
		{"/relative", []v1.WebhookEvent{stateChanged}, "webhook.url"},
		{"", []v1.WebhookEvent{stateChanged}, "webhook.url"},
		{"https://hooks.example.com/x", nil, "webhook.events"},
		{"https://hooks.example.com/x", []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_UNSPECIFIED}, "webhook.events"},
	} {
		_, err := c.CreateWebhook(ctx, &v1.CreateWebhookRequest{Parent: org.Name, Webhook: &v1.Webhook{Url: tc.url, Events: tc.events}})
		wantViolation(t, err, tc.field)
	}
	if after := snapshot(t, s); !equalCounts(before, after) {
		t.Fatalf("invalid creates wrote:\nbefore %v\nafter  %v", before, after)
	}

	// Admin only.
	_, err := c.CreateWebhook(org.OperatorCtx, &v1.CreateWebhookRequest{Parent: org.Name,
		Webhook: &v1.Webhook{Url: "https://hooks.example.com/x", Events: []v1.WebhookEvent{stateChanged}}})
	wantCode(t, err, codes.PermissionDenied)

	// Create: the secret is shown once and lives in Vault.
	req := &v1.CreateWebhookRequest{Parent: org.Name, RequestId: uuid.NewString(), Webhook: &v1.Webhook{
		Url: "https://hooks.example.com/dzconnect?tenant=a", Events: []v1.WebhookEvent{stateChanged, stateChanged},
	}}
	created, err := c.CreateWebhook(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	w, secret := created.GetWebhook(), created.GetSigningSecret()
	if !strings.HasPrefix(secret, webhook.SecretPrefix) || len(secret) < 40 {
		t.Fatalf("signing secret %q", secret)
	}
	if got, ok := webhookSecretAt(t, s, w.GetName(), 1); !ok || got != secret {
		t.Fatal("the signing secret is not in Vault")
	}
	if len(w.GetEvents()) != 1 || w.GetDisabled() || w.GetEtag() == "" || w.GetCreateTime() == nil {
		t.Fatalf("created %v", w)
	}
	replay, err := c.CreateWebhook(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if replay.GetWebhook().GetName() != w.GetName() || replay.GetSigningSecret() != "" {
		t.Fatalf("replay returned %v and a secret %q", replay.GetWebhook(), replay.GetSigningSecret())
	}
	req.Webhook.Url = "https://other.example.com/"
	_, err = c.CreateWebhook(ctx, req)
	wantViolation(t, err, "request_id")

	// Get and List never show the secret.
	got, err := c.GetWebhook(ctx, &v1.GetWebhookRequest{Name: w.GetName()})
	if err != nil || got.GetWebhook().GetUrl() != w.GetUrl() {
		t.Fatalf("GetWebhook: %v %v", got, err)
	}
	second, _ := newWebhook(t, s, ctx, org.Name, "https://second.example.com/hook")
	page1, err := c.ListWebhooks(ctx, &v1.ListWebhooksRequest{Parent: org.Name, PageSize: 1})
	if err != nil || len(page1.GetWebhooks()) != 1 || page1.GetWebhooks()[0].GetName() != w.GetName() || page1.GetNextPageToken() == "" {
		t.Fatalf("ListWebhooks page 1: %v %v", page1, err)
	}
	page2, err := c.ListWebhooks(ctx, &v1.ListWebhooksRequest{Parent: org.Name, PageSize: 1, PageToken: page1.GetNextPageToken()})
	if err != nil || len(page2.GetWebhooks()) != 1 || page2.GetWebhooks()[0].GetName() != second.GetName() {
		t.Fatalf("ListWebhooks page 2: %v %v", page2, err)
	}
	for _, raw := range []string{got.String(), page1.String(), page2.String()} {
		if strings.Contains(raw, secret) {
			t.Fatal("a read returned the signing secret")
		}
	}

	// Update: validation, mask, etag.
	_, err = c.UpdateWebhook(ctx, &v1.UpdateWebhookRequest{Webhook: &v1.Webhook{Name: w.GetName(), Url: "http://hooks.example.com/"}})
	wantViolation(t, err, "webhook.url")
	_, err = c.UpdateWebhook(ctx, &v1.UpdateWebhookRequest{Webhook: &v1.Webhook{Name: w.GetName()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"secret_path"}}})
	wantViolation(t, err, "update_mask")
	upd, err := c.UpdateWebhook(ctx, &v1.UpdateWebhookRequest{
		Webhook: &v1.Webhook{Name: w.GetName(), Etag: w.GetEtag(), Url: "https://new.example.com/hook", Disabled: true,
			Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRING}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"url", "disabled", "events"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if u := upd.GetWebhook(); u.GetUrl() != "https://new.example.com/hook" || !u.GetDisabled() || u.GetEtag() == w.GetEtag() ||
		len(u.GetEvents()) != 1 || u.GetEvents()[0] != v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRING {
		t.Fatalf("updated %v", u)
	}
	_, err = c.UpdateWebhook(ctx, &v1.UpdateWebhookRequest{Webhook: &v1.Webhook{Name: w.GetName(), Etag: w.GetEtag(), Url: "https://x.example.com/"}})
	wantCode(t, err, codes.Aborted)

	// REST through the gateway.
	r := rest{t: t, base: s.HTTPURL, key: org.Admin}
	if code, body, _ := r.do("GET", "/v1/"+w.GetName(), nil); code != http.StatusOK || !strings.Contains(fmt.Sprint(body), "https://new.example.com/hook") {
		t.Fatalf("REST get: %d %v", code, body)
	}

	// Delete destroys the secret.
	_, err = c.DeleteWebhook(ctx, &v1.DeleteWebhookRequest{Name: w.GetName(), Etag: w.GetEtag()})
	wantCode(t, err, codes.Aborted)
	if _, err := c.DeleteWebhook(ctx, &v1.DeleteWebhookRequest{Name: w.GetName()}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetWebhook(ctx, &v1.GetWebhookRequest{Name: w.GetName()})
	wantCode(t, err, codes.NotFound)
	if _, ok := webhookSecretAt(t, s, w.GetName(), 1); ok {
		t.Fatal("the signing secret survived the delete")
	}
	if n := countRows(t, s, "secret_destructions"); n != 0 {
		t.Fatalf("%d secret destructions left queued", n)
	}
	_, err = c.GetWebhook(ctx, &v1.GetWebhookRequest{Name: org.Name + "/webhooks/not-a-uuid"})
	wantViolation(t, err, "name")
}

// receiver is a webhook endpoint on loopback answering with a settable
// status and recording every request.
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []*received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.status.Store(http.StatusInternalServerError)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, &received{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		if code := int(r.status.Load()); code == http.StatusFound {
			http.Redirect(w, req, "/elsewhere", code)
		} else {
			w.WriteHeader(code)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []*received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*received(nil), r.got...)
}

// clock is a settable time for Deliverer.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// deliveryFixture is an org with an integration, and the stores a test
// Deliverer uses.
type deliveryFixture struct {
	s       *stack.Stack
	org     stack.Org
	integ   resource.Integration
	db      *postgres.DB
	secrets *vault.Store
	state   integration.State
}

func newDeliveryFixture(t *testing.T) *deliveryFixture {
	s := startWebhookStack(t)
	org := s.NewOrg(t, "Deliveries")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	in := newIntegration(t, s, org.OperatorCtx, tenant.GetName(), "webhook~Secret.Value_1234567890abcdefghij")
	n, err := resource.ParseIntegration("name", in.GetName())
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := vault.New(t.Context(), vault.Config{Addr: s.Vault.Addr, Token: s.Vault.Token, Mount: s.Vault.Mount})
	if err != nil {
		t.Fatal(err)
	}
	return &deliveryFixture{s: s, org: org, integ: n, db: postgres.New(s.DB), secrets: secrets, state: integration.StateUnverified}
}

// changeState records a check whose outcome differs from the current
// state: one delivery per subscribed webhook, queued in that transaction.
func (f *deliveryFixture) changeState(t *testing.T) {
	t.Helper()
	next := integration.StateBroken
	if f.state == integration.StateBroken {
		next = integration.StateHealthy
	}
	now := time.Now()
	_, err := recordCheck(f.s.DB, verify.Check{
		Org: f.integ.Org, Tenant: f.integ.Tenant, Integration: f.integ.Integration, ID: uuid.Must(uuid.NewV7()),
		Outcome: next, Trigger: verify.TriggerAPI, Summary: "state is now " + string(next), Steps: []verify.Step{},
		Start: now, End: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.state = next
}

func (f *deliveryFixture) deliverer(c *clock, client *http.Client, maxAttempts int) *webhook.Deliverer {
	return webhook.NewDeliverer(f.db, f.secrets, slog.New(slog.DiscardHandler), webhook.DelivererOptions{
		Client: client, MaxAttempts: maxAttempts, Now: c.Now, Jitter: func() float64 { return 0 }, Timeout: 5 * time.Second,
	})
}

func (f *deliveryFixture) deliveries(t *testing.T, hook string) []*v1.WebhookDelivery {
	t.Helper()
	resp, err := v1.NewWebhookServiceClient(f.s.Conn).ListWebhookDeliveries(f.org.AdminCtx, &v1.ListWebhookDeliveriesRequest{Parent: hook})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDeliveries()
}

func (f *deliveryFixture) nextAttempt(t *testing.T, delivery string) time.Time {
	t.Helper()
	var next time.Time
	id := delivery[strings.LastIndexByte(delivery, '/')+1:]
	if err := f.s.DB.QueryRow(t.Context(), `select next_attempt_time from webhook_deliveries where id = $1::bigint`, id).Scan(&next); err != nil {
		t.Fatal(err)
	}
	return next
}

func runOnce(t *testing.T, d *webhook.Deliverer, want int) {
	t.Helper()
	n, err := d.RunOnce(t.Context())
	if err != nil || n != want {
		t.Fatalf("RunOnce: %d attempts, %v; want %d", n, err, want)
	}
}

func TestWebhookDeliveryRetries(t *testing.T) {
	t.Parallel()
	f := newDeliveryFixture(t)
	rcv := newReceiver(t)
	hook, secret := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, rcv.srv.URL+"/hook")
	clk := &clock{now: time.Now().Add(time.Minute)}
	d := f.deliverer(clk, rcv.srv.Client(), 3)

	f.changeState(t)
	start := clk.Now()
	runOnce(t, d, 1) // 500
	got := f.deliveries(t, hook.GetName())
	if len(got) != 1 || got[0].GetStatus() != "pending" || got[0].GetAttempts() != 1 || got[0].GetLastStatusCode() != 500 ||
		!strings.Contains(got[0].GetLastError(), "500") || got[0].GetResource() != f.integ.String() || got[0].GetEvent() != stateChanged {
		t.Fatalf("after a 500: %v", got)
	}
	if next := f.nextAttempt(t, got[0].GetName()); !next.Equal(start.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("next attempt at %v, want start+1m (%v)", next, start.Add(time.Minute))
	}
	runOnce(t, d, 0) // not due yet
	clk.advance(59 * time.Second)
	runOnce(t, d, 0)
	clk.advance(time.Second)
	rcv.status.Store(http.StatusFound) // a redirect is not followed
	runOnce(t, d, 1)
	got = f.deliveries(t, hook.GetName())
	if got[0].GetAttempts() != 2 || got[0].GetLastStatusCode() != http.StatusFound || !strings.Contains(got[0].GetLastError(), "redirect") {
		t.Fatalf("after a redirect: %v", got[0])
	}
	if next := f.nextAttempt(t, got[0].GetName()); !next.Equal(clk.Now().Add(2 * time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("second retry at %v, want now+2m", next)
	}
	clk.advance(2 * time.Minute)
	rcv.status.Store(http.StatusNoContent)
	runOnce(t, d, 1)
	got = f.deliveries(t, hook.GetName())
	if got[0].GetStatus() != "delivered" || got[0].GetAttempts() != 3 || got[0].GetLastStatusCode() != 204 || got[0].GetDeliverTime() == nil {
		t.Fatalf("after a 204: %v", got[0])
	}
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3 (the redirect target must not be hit)", len(reqs))
	}
	for _, r := range reqs {
		if strings.Contains(string(r.body), secret) || strings.Contains(r.header.Get(webhook.HeaderSignature), secret) {
			t.Fatal("a delivery carried the secret")
		}
	}

	// The signature verifies with the webhook's secret, and not with another.
	last := reqs[2]
	sig, ts := last.header.Get("Dzconnect-Signature"), last.header.Get("Dzconnect-Timestamp")
	if !strings.HasPrefix(sig, "v1=") || ts == "" || last.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", last.header)
	}
	if err := webhook.Verify(secret, sig, ts, last.body, clk.Now(), 0); err != nil {
		t.Fatalf("Verify with the secret: %v", err)
	}
	if err := webhook.Verify(webhook.NewSecret(), sig, ts, last.body, clk.Now(), 0); err != webhook.ErrSignatureInvalid {
		t.Fatalf("Verify with another secret: %v", err)
	}
	if err := webhook.Verify(secret, sig, ts, append(last.body, ' '), clk.Now(), 0); err != webhook.ErrSignatureInvalid {
		t.Fatalf("Verify of a modified body: %v", err)
	}
	var ev event.Event
	if err := json.Unmarshal(last.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != event.StateChanged || ev.Integration != f.integ.String() || ev.State != "broken" || ev.PreviousState != "unverified" {
		t.Fatalf("payload %+v", ev)
	}
	if last.header.Get("Dzconnect-Delivery") != got[0].GetName() {
		t.Fatalf("Dzconnect-Delivery %q, want %q", last.header.Get("Dzconnect-Delivery"), got[0].GetName())
	}

	// A second event to a receiver that keeps failing: failed after the
	// maximum attempts; listed newest first.
	rcv.status.Store(http.StatusServiceUnavailable)
	f.changeState(t)
	runOnce(t, d, 1)
	clk.advance(time.Minute)
	runOnce(t, d, 1)
	clk.advance(2 * time.Minute)
	runOnce(t, d, 1)
	clk.advance(24 * time.Hour)
	runOnce(t, d, 0)
	got = f.deliveries(t, hook.GetName())
	if len(got) != 2 || got[0].GetStatus() != "failed" || got[0].GetAttempts() != 3 || got[0].GetLastStatusCode() != 503 ||
		got[1].GetStatus() != "delivered" || got[0].GetCreateTime().AsTime().Before(got[1].GetCreateTime().AsTime()) {
		t.Fatalf("deliveries (newest first): %v", got)
	}
	resp, err := v1.NewWebhookServiceClient(f.s.Conn).ListWebhookDeliveries(f.org.AdminCtx,
		&v1.ListWebhookDeliveriesRequest{Parent: hook.GetName(), PageSize: 1})
	if err != nil || len(resp.GetDeliveries()) != 1 || resp.GetDeliveries()[0].GetName() != got[0].GetName() || resp.GetNextPageToken() == "" {
		t.Fatalf("page 1: %v %v", resp, err)
	}
	resp, err = v1.NewWebhookServiceClient(f.s.Conn).ListWebhookDeliveries(f.org.AdminCtx,
		&v1.ListWebhookDeliveriesRequest{Parent: hook.GetName(), PageSize: 1, PageToken: resp.GetNextPageToken()})
	if err != nil || len(resp.GetDeliveries()) != 1 || resp.GetDeliveries()[0].GetName() != got[1].GetName() {
		t.Fatalf("page 2: %v %v", resp, err)
	}
	if strings.Contains(f.s.Logs.String(), secret) {
		t.Fatal("the signing secret was logged")
	}
}

// TestWebhookDeliveryReplicas runs two Deliverers at once: every delivery
// is sent exactly once; a disabled webhook receives nothing.
func TestWebhookDeliveryReplicas(t *testing.T) {
	t.Parallel()
	f := newDeliveryFixture(t)
	rcv := newReceiver(t)
	rcv.status.Store(http.StatusOK)
	const hooks = 6
	for range hooks {
		newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, rcv.srv.URL+"/hook")
	}
	off, _ := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, rcv.srv.URL+"/off")
	f.changeState(t)
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).UpdateWebhook(f.org.AdminCtx, &v1.UpdateWebhookRequest{
		Webhook: &v1.Webhook{Name: off.GetName(), Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().Add(time.Minute)}
	var wg sync.WaitGroup
	var total atomic.Int64
	for range 2 {
		d := f.deliverer(clk, rcv.srv.Client(), 0)
		wg.Go(func() {
			n, err := d.RunOnce(t.Context())
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(n))
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range rcv.requests() {
		seen[r.header.Get(webhook.HeaderDelivery)]++
	}
	if total.Load() != hooks || len(seen) != hooks {
		t.Fatalf("%d attempts, %d distinct deliveries received; want %d", total.Load(), len(seen), hooks)
	}
	for name, n := range seen {
		if n != 1 || strings.Contains(name, off.GetName()) {
			t.Fatalf("%s received %d times", name, n)
		}
	}
	got := f.deliveries(t, off.GetName())
	if len(got) != 1 || got[0].GetStatus() != "failed" || got[0].GetAttempts() != 0 {
		t.Fatalf("disabled webhook's delivery: %v", got)
	}
}

// TestWebhookCreateCrash stops a create after its pending row (as a crash
// would): the row is invisible, a retry with the same request_id finishes
// it with a secret in Vault, and an abandoned one is reaped with its
// secret's destruction queued.
func TestWebhookCreateCrash(t *testing.T) {
	t.Parallel()
	s := startWebhookStack(t)
	org := s.NewOrg(t, "Crash")
	c := v1.NewWebhookServiceClient(s.Conn)
	db := postgres.New(s.DB)
	o, err := resource.ParseOrg("name", org.Name)
	if err != nil {
		t.Fatal(err)
	}
	req := &v1.CreateWebhookRequest{Parent: org.Name, RequestId: uuid.NewString(), Webhook: &v1.Webhook{
		Url: "https://hooks.example.com/crash", Events: []v1.WebhookEvent{stateChanged}}}
	key := idempotency.Key{RequestID: uuid.MustParse(req.GetRequestId()),
		Hash: idempotency.HashRequest(req, func(m proto.Message) { m.(*v1.CreateWebhookRequest).RequestId = "" })}
	pending := func(k idempotency.Key) webhook.Webhook {
		id := uuid.Must(uuid.NewV7())
		row, _, err := db.BeginCreateWebhook(t.Context(), webhook.Webhook{Org: o.Org, ID: id, URL: req.GetWebhook().GetUrl(),
			Events: []webhook.Event{webhook.EventStateChanged}, SecretPath: webhook.SecretPath(o.Org, id)}, k)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	first := pending(key)
	name := webhook.Name(first.Org, first.ID)
	_, err = c.GetWebhook(org.AdminCtx, &v1.GetWebhookRequest{Name: name})
	wantCode(t, err, codes.NotFound)
	if l, err := c.ListWebhooks(org.AdminCtx, &v1.ListWebhooksRequest{Parent: org.Name}); err != nil || len(l.GetWebhooks()) != 0 {
		t.Fatalf("a pending webhook is listed: %v %v", l, err)
	}

	resp, err := c.CreateWebhook(org.AdminCtx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetWebhook().GetName() != name || resp.GetSigningSecret() == "" || resp.GetWebhook().GetDisabled() {
		t.Fatalf("the retry did not finish the pending create: %v", resp)
	}
	if got, ok := webhookSecretAt(t, s, name, 1); !ok || got != resp.GetSigningSecret() {
		t.Fatal("the finished create's secret is not in Vault")
	}

	abandoned := pending(idempotency.Key{})
	secrets, err := vault.New(t.Context(), vault.Config{Addr: s.Vault.Addr, Token: s.Vault.Token, Mount: s.Vault.Mount})
	if err != nil {
		t.Fatal(err)
	}
	n, err := webhook.NewService(db, secrets, slog.New(slog.DiscardHandler)).Reap(t.Context(), -time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("Reap: %d, %v", n, err)
	}
	var path string
	if err := s.DB.QueryRow(t.Context(), `select secret_path from secret_destructions`).Scan(&path); err != nil || path != abandoned.SecretPath {
		t.Fatalf("queued destruction %q, %v; want %q", path, err, abandoned.SecretPath)
	}
	if _, err := c.GetWebhook(org.AdminCtx, &v1.GetWebhookRequest{Name: name}); err != nil {
		t.Fatalf("the finished webhook was reaped: %v", err)
	}
}

// TestWebhookDeliveryTimeout: a receiver that does not answer within the
// timeout costs an attempt, recorded without the URL.
func TestWebhookDeliveryTimeout(t *testing.T) {
	t.Parallel()
	f := newDeliveryFixture(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	hook, _ := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, srv.URL+"/slow?token=customer-token")
	f.changeState(t)
	clk := &clock{now: time.Now().Add(time.Minute)}
	d := webhook.NewDeliverer(f.db, f.secrets, slog.New(slog.DiscardHandler), webhook.DelivererOptions{
		Client: srv.Client(), Now: clk.Now, Timeout: 200 * time.Millisecond,
	})
	runOnce(t, d, 1)
	got := f.deliveries(t, hook.GetName())
	if len(got) != 1 || got[0].GetStatus() != "pending" || got[0].GetAttempts() != 1 || got[0].GetLastStatusCode() != 0 ||
		!strings.Contains(got[0].GetLastError(), "timeout") || strings.Contains(got[0].GetLastError(), "customer-token") {
		t.Fatalf("after a timeout: %v", got)
	}
	next := f.nextAttempt(t, got[0].GetName())
	if lo, hi := clk.Now().Add(time.Minute), clk.Now().Add(66*time.Second); next.Before(lo.Truncate(time.Microsecond)) || next.After(hi) {
		t.Fatalf("next attempt %v not within 1m..1m6s (jitter) of now", next)
	}
}

// TestWebhookServerDelivers runs the server's own delivery worker.
func TestWebhookServerDelivers(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--webhook-delivery-interval", "100ms", "--webhook-allow-private-networks"}})
	org := s.NewOrg(t, "Server delivers")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	in := newIntegration(t, s, org.OperatorCtx, tenant.GetName(), "webhook~Secret.Value_1234567890abcdefghij")
	n, err := resource.ParseIntegration("name", in.GetName())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case got <- &received{header: r.Header.Clone(), body: body}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	hook, secret := newWebhook(t, s, org.AdminCtx, org.Name, srv.URL+"/hook")
	now := time.Now()
	if _, err := recordCheck(s.DB, verify.Check{
		Org: n.Org, Tenant: n.Tenant, Integration: n.Integration, ID: uuid.Must(uuid.NewV7()),
		Outcome: integration.StateHealthy, Trigger: verify.TriggerAPI, Summary: "ok", Steps: []verify.Step{}, Start: now, End: now,
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if err := webhook.Verify(secret, r.header.Get(webhook.HeaderSignature), r.header.Get(webhook.HeaderTimestamp), r.body, time.Now(), 0); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !strings.HasPrefix(r.header.Get(webhook.HeaderDelivery), hook.GetName()+"/deliveries/") {
			t.Fatalf("Dzconnect-Delivery %q", r.header.Get(webhook.HeaderDelivery))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not deliver within 30s")
	}
}
