package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// spanTree is the spans recorded so far, by ID.
type spanTree struct {
	spans []sdktrace.ReadOnlySpan
	byID  map[trace.SpanID]sdktrace.ReadOnlySpan
}

func treeOf(spans []sdktrace.ReadOnlySpan) spanTree {
	t := spanTree{spans: spans, byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}}
	for _, s := range spans {
		t.byID[s.SpanContext().SpanID()] = s
	}
	return t
}

// under reports whether s descends from root (root itself excluded).
func (t spanTree) under(s, root sdktrace.ReadOnlySpan) bool {
	for p := s.Parent(); p.IsValid(); {
		if p.SpanID() == root.SpanContext().SpanID() {
			return true
		}
		ps, ok := t.byID[p.SpanID()]
		if !ok {
			return false
		}
		p = ps.Parent()
	}
	return false
}

// inTrace lists the spans of root's trace, root excluded.
func (t spanTree) inTrace(root sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range t.spans {
		if s.SpanContext().TraceID() == root.SpanContext().TraceID() && s.SpanContext().SpanID() != root.SpanContext().SpanID() {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func attrString(s sdktrace.ReadOnlySpan, key string) string {
	v, _ := attr(s, key)
	return v.String()
}

// spanWaiter is an in-memory span recorder that says when a span ends.
type spanWaiter struct {
	*tracetest.SpanRecorder
	mu    sync.Mutex
	ended chan struct{} // closed (and replaced) when a span ends
}

func newSpanWaiter() *spanWaiter {
	return &spanWaiter{SpanRecorder: tracetest.NewSpanRecorder(), ended: make(chan struct{})}
}

func (w *spanWaiter) OnEnd(s sdktrace.ReadOnlySpan) {
	w.SpanRecorder.OnEnd(s)
	w.mu.Lock()
	close(w.ended)
	w.ended = make(chan struct{})
	w.mu.Unlock()
}

// wait returns the first ended span that matches, waiting for spans to end
// (a server span ends as the server finishes the call, which may be just
// after the client has its answer; a job's span after its work).
func (w *spanWaiter) wait(t *testing.T, what string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		ended := w.ended
		w.mu.Unlock()
		for _, s := range w.Ended() {
			if match(s) {
				return s
			}
		}
		select {
		case <-ended:
		case <-timeout:
			t.Fatalf("no span %s within 30s", what)
		}
	}
}

// spanStrings is every string a span carries: name, status, attributes,
// events and links, and the resource.
func spanStrings(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	kvs := func(as []attribute.KeyValue) {
		for _, kv := range as {
			out = append(out, string(kv.Key), kv.Value.String())
		}
	}
	for _, s := range spans {
		out = append(out, s.Name(), s.Status().Description)
		kvs(s.Attributes())
		for _, e := range s.Events() {
			out = append(out, e.Name)
			kvs(e.Attributes)
		}
		for _, l := range s.Links() {
			kvs(l.Attributes)
		}
		kvs(s.Resource().Attributes())
	}
	return out
}

// logLine finds the server's "rpc" log line of a request ID.
func logLine(t *testing.T, s *stack.Stack, requestID string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s.Logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "rpc" && m["request_id"] == requestID {
			return m
		}
	}
	t.Fatalf("no rpc log line with request_id %s", requestID)
	return nil
}

// TestTraceOfOneCheck runs one on-demand check over gRPC and one over REST
// against msftsim with the spans recorded in memory, and asserts the span
// tree (issue 11 item 5): the server span is the root of the call; under
// it the check, the Vault read, the token request and the Graph probes
// (client-request-id as msftsim received it, Microsoft's request-id as it
// answered), the Postgres statements named by query; the webhook delivery
// job the check queued is linked to it; the call's log line carries the
// trace ID; and no secret is in any span.
func TestTraceOfOneCheck(t *testing.T) {
	t.Parallel()
	rec := newSpanWaiter()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: append(stack.SimArgs(sim), "--webhook-allow-private-networks"), SpanProcessor: rec})
	info, err := sim.Admin().AddTenant(msftsim.TenantSpec{})
	if err != nil {
		t.Fatal(err)
	}
	org := s.NewOrg(t, "Tracing")
	tenant, err := s.Clients().Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer"}})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := sim.Admin().CreateApp(info.ID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Clients().Integrations.CreateIntegration(org.OperatorCtx, &v1.CreateIntegrationRequest{
		Parent: tenant.GetTenant().GetName(), ClientSecret: creds.ClientSecret,
		Integration: &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: creds.ClientID},
			Credential: &v1.Credential{ExpireTime: timestamppb.New(time.Now().Add(300 * 24 * time.Hour))}}})
	if err != nil {
		t.Fatal(err)
	}
	name := created.GetIntegration().GetName()
	// A webhook, so that the check's change of state queues a delivery job.
	delivered := make(chan struct{}, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case delivered <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(receiver.Close)
	_, signingSecret := newWebhook(t, s, org.AdminCtx, org.Name, receiver.URL+"/hook")

	// gRPC.
	const grpcID = "trace-check-grpc"
	ctx := metadata.AppendToOutgoingContext(org.OperatorCtx, "x-request-id", grpcID)
	resp, err := s.Clients().Integrations.CheckIntegration(ctx, &v1.CheckIntegrationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCheck().GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("check: %s", describe(resp.GetCheck()))
	}
	server := rec.wait(t, "CheckIntegration (gRPC server)", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.SpanKind() == trace.SpanKindServer && strings.HasSuffix(sp.Name(), "IntegrationService/CheckIntegration") &&
			attrString(sp, "dzconnect.request_id") == grpcID
	})
	if server.Parent().IsValid() {
		t.Fatalf("the gRPC server span has a parent %v: it must be the root of the call", server.Parent())
	}
	if got := attrString(server, "dzconnect.organization_id"); !strings.HasSuffix(org.Name, "/"+got) || got == "" {
		t.Fatalf("dzconnect.organization_id = %q, organization %s", got, org.Name)
	}
	tree := treeOf(rec.Ended())
	call := tree.inTrace(server)
	t.Logf("the call's %d spans under %q: %s", len(call), server.Name(), names(call))
	for _, sp := range call {
		if !tree.under(sp, server) {
			t.Errorf("span %q of the call's trace is not under its server span", sp.Name())
		}
	}
	find := func(what string, match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
		t.Helper()
		var out []sdktrace.ReadOnlySpan
		for _, sp := range call {
			if match(sp) {
				out = append(out, sp)
			}
		}
		if len(out) == 0 {
			t.Errorf("no %s span under the call (%d spans: %s)", what, len(call), names(call))
		}
		return out
	}
	checks := find("check", func(sp sdktrace.ReadOnlySpan) bool { return sp.Name() == "check" })
	find("Vault read", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.Name() == "vault kv read" && sp.SpanKind() == trace.SpanKindClient && attrString(sp, "vault.mount") == s.Vault.Mount
	})
	requests := map[string]msftsim.Entry{}
	for _, e := range sim.Admin().Requests(10000) {
		if e.ClientRequestID != "" {
			requests[e.ClientRequestID] = e
		}
	}
	msCalls := append(find("token request", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.Name() == "POST entra token" && strings.HasSuffix(attrString(sp, "url.path"), "/oauth2/v2.0/token")
	}), find("Graph probe", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.SpanKind() == trace.SpanKindClient && attrString(sp, "microsoft.api") == "graph"
	})...)
	for _, sp := range msCalls {
		id := attrString(sp, "microsoft.client_request_id")
		e, ok := requests[id]
		switch {
		case id == "":
			t.Errorf("span %q has no microsoft.client_request_id", sp.Name())
		case !ok:
			t.Errorf("span %q: client-request-id %s is not one msftsim received", sp.Name(), id)
		case e.RequestID != "" && attrString(sp, "microsoft.request_id") != e.RequestID:
			t.Errorf("span %q: microsoft.request_id %q, msftsim answered %q", sp.Name(), attrString(sp, "microsoft.request_id"), e.RequestID)
		}
		if _, ok := attr(sp, "http.request.resend_count"); !ok {
			t.Errorf("span %q has no http.request.resend_count", sp.Name())
		}
		if strings.Contains(attrString(sp, "url.path"), "?") {
			t.Errorf("span %q records a query string", sp.Name())
		}
	}
	pg := find("Postgres", func(sp sdktrace.ReadOnlySpan) bool { return attrString(sp, "db.system") == "postgresql" })
	var insertCheck bool
	for _, sp := range pg {
		insertCheck = insertCheck || sp.Name() == "InsertCheck"
		if sp.Name() == "" || sp.Name() == "sql" {
			t.Errorf("Postgres span without a query name: %q", attrString(sp, "db.statement"))
		}
	}
	if !insertCheck {
		t.Errorf("no Postgres span named InsertCheck among %s", names(pg))
	}

	// The delivery job the check queued: a trace of its own, linked to
	// the span that queued it, in the call's trace.
	select {
	case <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatal("the webhook delivery did not arrive within 30s")
	}
	job := rec.wait(t, "job deliver_webhook", func(sp sdktrace.ReadOnlySpan) bool {
		if sp.Name() != "job deliver_webhook" {
			return false
		}
		for _, l := range sp.Links() {
			if l.SpanContext.TraceID() == server.SpanContext().TraceID() {
				return true
			}
		}
		return false
	})
	t.Logf("job span %q, linked to %v", job.Name(), job.Links())
	if job.SpanKind() != trace.SpanKindConsumer || job.Parent().IsValid() {
		t.Errorf("job span kind %v parent %v: want a consumer span, root of its trace", job.SpanKind(), job.Parent())
	}
	tree = treeOf(rec.Ended())
	for _, l := range job.Links() {
		linked, ok := tree.byID[l.SpanContext.SpanID()]
		if !ok || linked.SpanContext().TraceID() != server.SpanContext().TraceID() {
			t.Errorf("the job's link %v names no span of the call", l.SpanContext)
		} else if len(checks) > 0 && linked.SpanContext().SpanID() != checks[0].SpanContext().SpanID() && !tree.under(linked, server) {
			t.Errorf("the job is linked to %q, not a span of the check", linked.Name())
		}
	}

	// The call's log line carries its trace.
	line := logLine(t, s, grpcID)
	if line["trace_id"] != server.SpanContext().TraceID().String() || line["span_id"] != server.SpanContext().SpanID().String() {
		t.Errorf("log line trace_id %v span_id %v, server span %s/%s", line["trace_id"], line["span_id"],
			server.SpanContext().TraceID(), server.SpanContext().SpanID())
	}

	// REST: the REST server span is the root; under it the gateway's gRPC
	// client span; under that the gRPC server span.
	const restID = "trace-check-rest"
	status, out, _ := rest{t, s.HTTPURL, org.Operator}.do("POST", "/v1/"+name+":check", map[string]any{}, "x-request-id", restID)
	if status != http.StatusOK {
		t.Fatalf("REST check: %d %v", status, out)
	}
	rserver := rec.wait(t, "CheckIntegration (gRPC server, via REST)", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.SpanKind() == trace.SpanKindServer && strings.HasSuffix(sp.Name(), "IntegrationService/CheckIntegration") &&
			attrString(sp, "dzconnect.request_id") == restID
	})
	restSpan := rec.wait(t, "REST server", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.SpanKind() == trace.SpanKindServer && sp.SpanContext().TraceID() == rserver.SpanContext().TraceID() && !sp.Parent().IsValid()
	})
	if !strings.HasPrefix(restSpan.Name(), "POST /v1/") || !strings.HasSuffix(restSpan.Name(), ":check") {
		t.Errorf("REST span name %q: want the gateway's route", restSpan.Name())
	}
	tree = treeOf(rec.Ended())
	gw, ok := tree.byID[rserver.Parent().SpanID()]
	switch {
	case !ok:
		t.Errorf("the gRPC server span of the REST call has no recorded parent")
	case gw.SpanKind() != trace.SpanKindClient || gw.Parent().SpanID() != restSpan.SpanContext().SpanID():
		t.Errorf("the gRPC server span's parent %q (kind %v) is not the gateway's client span under the REST span", gw.Name(), gw.SpanKind())
	}
	if line := logLine(t, s, restID); line["trace_id"] != restSpan.SpanContext().TraceID().String() {
		t.Errorf("REST call's log line trace_id %v, trace %s", line["trace_id"], restSpan.SpanContext().TraceID())
	}

	// No secret in any span: the client secret, API keys, the Vault token,
	// the webhook signing secret, and access tokens (JWTs begin "eyJ").
	all := spanStrings(rec.Ended())
	if len(all) < 100 {
		t.Fatalf("only %d strings recorded: the leak check would prove nothing", len(all))
	}
	secrets := []string{creds.ClientSecret, s.AdminKey, s.Vault.Token, org.Admin, org.Operator, org.Viewer, signingSecret, "eyJ"}
	for _, str := range all {
		for _, secret := range secrets {
			if secret != "" && strings.Contains(str, secret) {
				t.Errorf("secret %.6s… found in a span: %.200s", secret, str)
			}
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}

// TestTraceparentWithTracingOff: with no exporter (the default) nothing is
// recorded, but a caller's trace context still reaches the call's log
// line, over gRPC and REST.
func TestTraceparentWithTracingOff(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	tp := "00-" + traceID + "-" + parent + "-01"
	ctx := metadata.AppendToOutgoingContext(s.Admin(t), "traceparent", tp, "x-request-id", "traceparent-grpc")
	if _, err := s.Clients().Orgs.ListOrganizations(ctx, &v1.ListOrganizationsRequest{}); err != nil {
		t.Fatal(err)
	}
	if status, out, _ := (rest{t, s.HTTPURL, s.AdminKey}).do("GET", "/v1/organizations", nil, "traceparent", tp, "x-request-id", "traceparent-rest"); status != http.StatusOK {
		t.Fatalf("REST: %d %v", status, out)
	}
	for _, id := range []string{"traceparent-grpc", "traceparent-rest"} {
		if line := logLine(t, s, id); line["trace_id"] != traceID || line["span_id"] != parent {
			t.Errorf("%s: log line trace_id %v span_id %v, want the caller's %s %s", id, line["trace_id"], line["span_id"], traceID, parent)
		}
	}
}
