package e2e

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/vault"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

const stateChanged = v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED

// startWebhookStack runs a server that sends no deliveries itself
// (--webhook-workers 0): the tests run the deliver_webhook jobs with their
// own River clients, and stand in for the clock by making a retry due.
func startWebhookStack(t *testing.T) *stack.Stack {
	return stack.Start(t, stack.Options{ExtraArgs: []string{"--webhook-workers", "0"}})
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
	// The destruction was queued with the delete (a destroy_secret job);
	// the server's job queue runs it.
	waitJobs(t, s, "destroy_secret")
	if _, ok := webhookSecretAt(t, s, w.GetName(), 1); ok {
		t.Fatal("the signing secret survived the delete")
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

// deliveryFixture is an org with an integration, and the stores a test
// Deliverer uses.
type deliveryFixture struct {
	s        *stack.Stack
	org      stack.Org
	integ    resource.Integration
	db       *postgres.DB
	secrets  *vault.Store
	inserter *jobs.Inserter
	state    integration.State
	attempts int // deliveries queued by changeState get at most this many attempts
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
	ins, err := jobs.NewInserter(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	return &deliveryFixture{s: s, org: org, integ: n, db: postgres.New(s.DB), secrets: secrets, inserter: ins,
		state: integration.StateUnverified}
}

// notify makes the fixture's recorded checks queue deliveries of at most
// maxAttempts attempts.
func (f *deliveryFixture) notify(maxAttempts int) {
	f.attempts = maxAttempts
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
	_, err := recordCheckWith(f.db, webhook.NewNotifier(f.db, f.inserter, f.attempts), verify.Check{
		Org: f.integ.Org, Tenant: f.integ.Tenant, Integration: f.integ.Integration, ID: uuid.Must(uuid.NewV7()),
		Outcome: next, Trigger: verify.TriggerAPI, Summary: "state is now " + string(next), Steps: []verify.Step{},
		Start: now, End: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.state = next
}

// worker is a replica's River client that sends deliveries.
type worker struct {
	client *river.Client[pgx.Tx]
	events <-chan *river.Event
}

// worker starts a River client working the webhooks queue only.
func (f *deliveryFixture) worker(t *testing.T, client *http.Client, timeout time.Duration) *worker {
	t.Helper()
	d := webhook.NewDeliverer(f.db, f.db, f.secrets, slog.New(slog.DiscardHandler), webhook.DelivererOptions{
		Client: client, Timeout: timeout})
	q, err := jobs.New(f.s.DB, f.db, jobs.Config{NoChecks: true}, f.db, nil, slog.New(slog.DiscardHandler), d.Extension())
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := q.Client().Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = q.Stop(ctx)
	})
	return &worker{client: q.Client(), events: events}
}

// attempts waits until the workers finished n delivery attempts in all.
func attempts(t *testing.T, n int, ws ...*worker) int {
	t.Helper()
	timeout := time.After(30 * time.Second)
	got := 0
	for got < n {
		for _, w := range ws {
			select {
			case ev := <-w.events:
				if ev.Job.Kind == (webhook.DeliverArgs{}).Kind() {
					got++
				}
			case <-timeout:
				t.Fatalf("%d delivery attempts within 30s, want %d", got, n)
			default:
			}
		}
		if got < n {
			select {
			case <-timeout:
				t.Fatalf("%d delivery attempts within 30s, want %d", got, n)
			case <-time.After(10 * time.Millisecond): // polling the workers' event channels
			}
		}
	}
	return got
}

// retryNow makes every delivery job waiting for its next attempt due now,
// as if its retry time had come.
func (f *deliveryFixture) retryNow(t *testing.T, w *worker) {
	t.Helper()
	rows, err := f.s.DB.Query(t.Context(), `select id from river_job where kind = 'deliver_webhook' and state = 'retryable'`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := w.client.JobRetry(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
}

// retryAt is when River runs the delivery's job next.
func (f *deliveryFixture) retryAt(t *testing.T, delivery string) time.Time {
	t.Helper()
	var at time.Time
	id := delivery[strings.LastIndexByte(delivery, '/')+1:]
	if err := f.s.DB.QueryRow(t.Context(), `select scheduled_at from river_job where kind = 'deliver_webhook'
		and (args->>'delivery')::bigint = $1::bigint`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
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

func TestWebhookDeliveryRetries(t *testing.T) {
	t.Parallel()
	f := newDeliveryFixture(t)
	rcv := newReceiver(t)
	hook, secret := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, rcv.srv.URL+"/hook")
	f.notify(3)
	w := f.worker(t, rcv.srv.Client(), 5*time.Second)

	start := time.Now()
	f.changeState(t)
	attempts(t, 1, w) // 500
	got := f.deliveries(t, hook.GetName())
	if len(got) != 1 || got[0].GetStatus() != "pending" || got[0].GetAttempts() != 1 || got[0].GetLastStatusCode() != 500 ||
		!strings.Contains(got[0].GetLastError(), "500") || got[0].GetResource() != f.integ.String() || got[0].GetEvent() != stateChanged {
		t.Fatalf("after a 500: %v", got)
	}
	// The log shows when River runs the retry: 1m (+ up to 10% jitter) later.
	next, at := f.nextAttempt(t, got[0].GetName()), f.retryAt(t, got[0].GetName())
	if !next.Equal(at) || next.Before(start.Add(time.Minute)) || next.After(time.Now().Add(66*time.Second)) {
		t.Fatalf("next attempt %v, River's retry %v; want equal, 1m..1m6s after the attempt", next, at)
	}
	rcv.status.Store(http.StatusFound) // a redirect is not followed
	second := time.Now()
	f.retryNow(t, w)
	attempts(t, 1, w)
	got = f.deliveries(t, hook.GetName())
	if got[0].GetAttempts() != 2 || got[0].GetLastStatusCode() != http.StatusFound || !strings.Contains(got[0].GetLastError(), "redirect") {
		t.Fatalf("after a redirect: %v", got[0])
	}
	next, at = f.nextAttempt(t, got[0].GetName()), f.retryAt(t, got[0].GetName())
	if !next.Equal(at) || next.Before(second.Add(2*time.Minute)) || next.After(time.Now().Add(132*time.Second)) {
		t.Fatalf("second retry at %v (River %v), want 2m..2m12s after the attempt", next, at)
	}
	rcv.status.Store(http.StatusNoContent)
	f.retryNow(t, w)
	attempts(t, 1, w)
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
	if err := webhook.Verify(secret, sig, ts, last.body, time.Now(), 0); err != nil {
		t.Fatalf("Verify with the secret: %v", err)
	}
	if err := webhook.Verify(webhook.NewSecret(), sig, ts, last.body, time.Now(), 0); !errors.Is(err, webhook.ErrSignatureInvalid) {
		t.Fatalf("Verify with another secret: %v", err)
	}
	if err := webhook.Verify(secret, sig, ts, append(last.body, ' '), time.Now(), 0); !errors.Is(err, webhook.ErrSignatureInvalid) {
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
	attempts(t, 1, w)
	f.retryNow(t, w)
	attempts(t, 1, w)
	f.retryNow(t, w)
	attempts(t, 1, w)
	var state string
	if err := f.s.DB.QueryRow(t.Context(), `select state from river_job where kind = 'deliver_webhook' order by id desc limit 1`).Scan(&state); err != nil || state != "discarded" {
		t.Fatalf("the last attempt's job is %q (%v), want discarded: no fourth attempt", state, err)
	}
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
	f.notify(webhook.DefaultMaxAttempts)
	f.changeState(t)
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).UpdateWebhook(f.org.AdminCtx, &v1.UpdateWebhookRequest{
		Webhook: &v1.Webhook{Name: off.GetName(), Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	a, b := f.worker(t, rcv.srv.Client(), 5*time.Second), f.worker(t, rcv.srv.Client(), 5*time.Second)
	total := attempts(t, hooks+1, a, b) // the disabled webhook's delivery completes as failed
	seen := map[string]int{}
	for _, r := range rcv.requests() {
		seen[r.header.Get(webhook.HeaderDelivery)]++
	}
	if total != hooks+1 || len(seen) != hooks {
		t.Fatalf("%d jobs, %d distinct deliveries received; want %d", total, len(seen), hooks)
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
		// What Create commits before it writes the secret (step 1).
		id := uuid.Must(uuid.NewV7())
		var row webhook.Webhook
		err := db.InTx(t.Context(), func(ctx context.Context, tx uow.Tx) error {
			if _, err := db.ClaimRequest(ctx, tx, o.Org, "CreateWebhook", k, webhook.Name(o.Org, id)); err != nil {
				return err
			}
			var err error
			row, err = db.InsertWebhook(ctx, tx, webhook.Webhook{Org: o.Org, ID: id, URL: req.GetWebhook().GetUrl(),
				Events: []webhook.Event{webhook.EventStateChanged}, SecretPath: webhook.SecretPath(o.Org, id)})
			return err
		})
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
	ins, err := jobs.NewInserter(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	n, err := webhook.NewService(db, db, db, db, jobs.NewSecretGC(ins), secrets, slog.New(slog.DiscardHandler)).Reap(t.Context(), -time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("Reap: %d, %v", n, err)
	}
	var path string
	if err := s.DB.QueryRow(t.Context(), `select args->>'path' from river_job where kind = 'destroy_secret'`).Scan(&path); err != nil || path != abandoned.SecretPath {
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
	f.notify(webhook.DefaultMaxAttempts)
	w := f.worker(t, srv.Client(), 200*time.Millisecond)
	start := time.Now()
	f.changeState(t)
	attempts(t, 1, w)
	got := f.deliveries(t, hook.GetName())
	if len(got) != 1 || got[0].GetStatus() != "pending" || got[0].GetAttempts() != 1 || got[0].GetLastStatusCode() != 0 ||
		!strings.Contains(got[0].GetLastError(), "timeout") || strings.Contains(got[0].GetLastError(), "customer-token") {
		t.Fatalf("after a timeout: %v", got)
	}
	next := f.nextAttempt(t, got[0].GetName())
	if lo, hi := start.Add(time.Minute), time.Now().Add(66*time.Second); next.Before(lo) || next.After(hi) {
		t.Fatalf("next attempt %v not within 1m..1m6s (jitter) of the attempt", next)
	}
}

// TestWebhookServerDelivers runs the server's own delivery worker.
func TestWebhookServerDelivers(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--webhook-allow-private-networks"}})
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

// TestWebhookFairness: one organization whose receivers hang holds at
// most its share of a replica's delivery workers; another organization's
// delivery goes out meanwhile, not after the hanging ones time out (issue
// 11 item 12c).
func TestWebhookFairness(t *testing.T) {
	t.Parallel()
	// 8 workers: an organization's share is 2. The timeout (2m) is far
	// beyond the test's wait, so only fairness can let B through.
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--webhook-allow-private-networks", "--webhook-workers", "8", "--webhook-timeout", "2m"}})
	var mu sync.Mutex
	hanging, most := 0, 0
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hanging++
		most = max(most, hanging)
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		hanging--
		mu.Unlock()
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close
	fast := make(chan struct{}, 1)
	quick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case fast <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(quick.Close)

	changed := func(org stack.Org, url string, hooks int) {
		tenant := newTenant(t, s, org.OperatorCtx, org.Name)
		in := newIntegration(t, s, org.OperatorCtx, tenant.GetName(), "webhook~Secret.Value_1234567890abcdefghij")
		n, err := resource.ParseIntegration("name", in.GetName())
		if err != nil {
			t.Fatal(err)
		}
		for range hooks {
			newWebhook(t, s, org.AdminCtx, org.Name, url)
		}
		now := time.Now()
		if _, err := recordCheck(s.DB, verify.Check{
			Org: n.Org, Tenant: n.Tenant, Integration: n.Integration, ID: uuid.Must(uuid.NewV7()),
			Outcome: integration.StateHealthy, Trigger: verify.TriggerAPI, Summary: "ok", Steps: []verify.Step{}, Start: now, End: now,
		}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := s.NewOrg(t, "Hanging receivers"), s.NewOrg(t, "Quick receiver")
	changed(a, slow.URL+"/hook", 20)
	// A's deliveries are being sent (they hang at the receiver) ...
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		n := hanging
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of A's deliveries reached its receiver in 30s", n)
		}
		time.Sleep(50 * time.Millisecond) // polling the receiver's count
	}
	// ... when B's state changes: its delivery goes out while A's hang.
	changed(b, quick.URL+"/hook", 1)
	select {
	case <-fast:
	case <-time.After(30 * time.Second):
		t.Fatal("B's delivery waited behind A's hanging ones")
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 2 {
		t.Fatalf("A held %d delivery workers at once, want at most its share of 2", most)
	}
}
