package e2e

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// TestWebhookDeliveryLogAndRedeliver: the delivery log shows when the last
// attempt ran and when the next is due, and a delivery that failed can be
// sent again by hand: a new delivery of the same payload, audited,
// idempotent by request_id (issue 10 item 9f).
func TestWebhookDeliveryLogAndRedeliver(t *testing.T) {
	t.Parallel()
	f := newDeliveryFixture(t)
	rcv := newReceiver(t) // answers 500 until told otherwise
	hook, _ := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, rcv.srv.URL+"/hook")
	hooks := v1.NewWebhookServiceClient(f.s.Conn)
	f.notify(2)
	w := f.worker(t, rcv.srv.Client(), 5*time.Second)

	// First attempt fails: pending, with the last and the next attempt time.
	start := time.Now()
	f.changeState(t)
	attempts(t, 1, w)
	got := f.deliveries(t, hook.GetName())
	if len(got) != 1 {
		t.Fatalf("deliveries %v", got)
	}
	orig := got[0]
	last, next := orig.GetLastAttemptTime().AsTime(), orig.GetNextAttemptTime().AsTime()
	if orig.GetStatus() != "pending" || orig.GetLastAttemptTime() == nil || last.Before(start.Add(-time.Second)) || last.After(time.Now()) ||
		orig.GetNextAttemptTime() == nil || !next.Equal(f.retryAt(t, orig.GetName()).Truncate(time.Microsecond)) || !next.After(last) ||
		orig.GetPayload() == "" || orig.GetRedeliveryOf() != "" {
		t.Fatalf("pending delivery after one failed attempt: %v (River retry at %v)", orig, f.retryAt(t, orig.GetName()))
	}

	// A pending delivery is not redelivered: its next attempt is scheduled.
	before := snapshot(t, f.s)
	_, err := hooks.RedeliverWebhookDelivery(f.org.AdminCtx, &v1.RedeliverWebhookDeliveryRequest{Name: orig.GetName()})
	wantCode(t, err, codes.FailedPrecondition)
	// Bad input: InvalidArgument naming the field; unknown: NotFound;
	// operators may not; nothing written by any of them.
	for _, bad := range []string{"", hook.GetName(), hook.GetName() + "/deliveries/x", hook.GetName() + "/deliveries/-1",
		hook.GetName() + "/deliveries/007", "organizations/x/webhooks/y/deliveries/1"} {
		_, err := hooks.RedeliverWebhookDelivery(f.org.AdminCtx, &v1.RedeliverWebhookDeliveryRequest{Name: bad})
		wantViolation(t, err, "name")
	}
	_, err = hooks.RedeliverWebhookDelivery(f.org.AdminCtx, &v1.RedeliverWebhookDeliveryRequest{Name: orig.GetName(), RequestId: "not-a-uuid"})
	wantViolation(t, err, "request_id")
	_, err = hooks.RedeliverWebhookDelivery(f.org.AdminCtx, &v1.RedeliverWebhookDeliveryRequest{Name: hook.GetName() + "/deliveries/999999"})
	wantCode(t, err, codes.NotFound)
	_, err = hooks.RedeliverWebhookDelivery(f.org.OperatorCtx, &v1.RedeliverWebhookDeliveryRequest{Name: orig.GetName()})
	wantCode(t, err, codes.PermissionDenied)
	if after := snapshot(t, f.s); !equalCounts(before, after) {
		t.Fatalf("refused redeliveries wrote:\nbefore %v\nafter  %v", before, after)
	}

	// The last attempt fails too: failed, no next attempt.
	f.retryNow(t, w)
	attempts(t, 1, w)
	got = f.deliveries(t, hook.GetName())
	if len(got) != 1 || got[0].GetStatus() != "failed" || got[0].GetAttempts() != 2 || got[0].GetNextAttemptTime() != nil ||
		!got[0].GetLastAttemptTime().AsTime().After(last) {
		t.Fatalf("after the last attempt: %v", got)
	}

	// The receiver is fixed; the admin redelivers, twice with one request_id.
	rcv.status.Store(http.StatusNoContent)
	req := &v1.RedeliverWebhookDeliveryRequest{Name: orig.GetName(), RequestId: uuid.NewString()}
	resp, err := hooks.RedeliverWebhookDelivery(f.org.AdminCtx, req)
	if err != nil {
		t.Fatal(err)
	}
	re := resp.GetDelivery()
	if re.GetName() == orig.GetName() || re.GetRedeliveryOf() != orig.GetName() || re.GetStatus() != "pending" ||
		re.GetAttempts() != 0 || re.GetPayload() != orig.GetPayload() || re.GetEvent() != orig.GetEvent() || re.GetResource() != orig.GetResource() {
		t.Fatalf("redelivery %v of %v", re, orig)
	}
	again, err := hooks.RedeliverWebhookDelivery(f.org.AdminCtx, req)
	if err != nil || again.GetDelivery().GetName() != re.GetName() {
		t.Fatalf("replay: %v %v, want %s", again, err, re.GetName())
	}
	// The same request_id for another delivery is refused.
	_, err = hooks.RedeliverWebhookDelivery(f.org.AdminCtx, &v1.RedeliverWebhookDeliveryRequest{Name: hook.GetName() + "/deliveries/999999", RequestId: req.GetRequestId()})
	if err == nil {
		t.Fatal("a request_id reused for another delivery was accepted")
	}
	ev, err := f.s.Clients().Audit.ListAuditEvents(f.org.AdminCtx, &v1.ListAuditEventsRequest{Parent: f.org.Name, Resource: re.GetName()})
	if err != nil || len(ev.GetAuditEvents()) != 1 || ev.GetAuditEvents()[0].GetMethod() != v1.WebhookService_RedeliverWebhookDelivery_FullMethodName {
		t.Fatalf("audit of the redelivery: %v %v", ev, err)
	}

	// It is sent: the same payload, under its own delivery name, and the
	// log shows it delivered beside the failed original.
	attempts(t, 1, w)
	reqs := rcv.requests()
	lastReq := reqs[len(reqs)-1]
	if lastReq.header.Get(webhook.HeaderDelivery) != re.GetName() || !bytes.Equal(lastReq.body, reqs[0].body) {
		t.Fatalf("redelivered request: %s %s, first %s", lastReq.header.Get(webhook.HeaderDelivery), lastReq.body, reqs[0].body)
	}
	got = f.deliveries(t, hook.GetName())
	if len(got) != 2 || got[0].GetName() != re.GetName() || got[0].GetStatus() != "delivered" || got[0].GetDeliverTime() == nil ||
		got[0].GetLastAttemptTime() == nil || got[0].GetNextAttemptTime() != nil || got[1].GetName() != orig.GetName() || got[1].GetStatus() != "failed" {
		t.Fatalf("log after the redelivery: %v", got)
	}

	// A disabled webhook is not redelivered to.
	if _, err := hooks.UpdateWebhook(f.org.AdminCtx, &v1.UpdateWebhookRequest{Webhook: &v1.Webhook{Name: hook.GetName(), Disabled: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = hooks.RedeliverWebhookDelivery(f.org.AdminCtx, &v1.RedeliverWebhookDeliveryRequest{Name: orig.GetName()})
	wantCode(t, err, codes.FailedPrecondition)
}
