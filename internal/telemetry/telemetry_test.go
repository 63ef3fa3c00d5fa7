package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// callerContext is a server's context after extracting a caller's
// traceparent.
func callerContext() context.Context {
	h := http.Header{}
	h.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	return Propagator.Extract(context.Background(), propagation.HeaderCarrier(h))
}

// TestOffStartsNoExporter: without an endpoint the provider is the no-op
// one: no exporter, no goroutine, nothing recorded; a caller's trace
// context still flows to the log line.
func TestOffStartsNoExporter(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := New(context.Background(), Config{SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Exporting() || p.Recording() {
		t.Fatalf("exporting %v recording %v with no endpoint", p.Exporting(), p.Recording())
	}
	if _, ok := p.TracerProvider().(noop.TracerProvider); !ok {
		t.Fatalf("provider %T, want the no-op one", p.TracerProvider())
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines started", after-before)
	}
	// A server span under the caller's context is not recorded but keeps
	// the caller's IDs; a child starts nothing.
	ctx, span := p.TracerProvider().Tracer("t").Start(callerContext(), "server", trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() || span.SpanContext().TraceID().String() != callerTrace {
		t.Fatalf("server span recording %v, trace %s", span.IsRecording(), span.SpanContext().TraceID())
	}
	if cctx, child := Child(ctx, "child"); child.IsRecording() || cctx != ctx {
		t.Fatal("Child started a span without a recording parent")
	}
	var buf bytes.Buffer
	slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).InfoContext(ctx, "rpc", "request_id", "r1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["trace_id"] != callerTrace || line["span_id"] != callerSpan || line["request_id"] != "r1" {
		t.Fatalf("log line %v", line)
	}
	// Without a span context nothing is added.
	buf.Reset()
	slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x").Info("plain")
	if strings.Contains(buf.String(), "trace_id") || !strings.Contains(buf.String(), `"component":"x"`) {
		t.Fatalf("log line %s", buf.String())
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestExporterShutdownBounded: with an endpoint an exporter runs; at
// shutdown a collector that is not there does not hold the exit past the
// given deadline.
func TestExporterShutdownBounded(t *testing.T) {
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			// A port nothing listens on: a closed listener's.
			l := httptest.NewServer(http.NotFoundHandler())
			addr := l.Listener.Addr().String()
			l.Close()
			p, err := New(context.Background(), Config{Endpoint: addr, Protocol: proto, Insecure: true, SampleRatio: 1, ServiceName: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if !p.Exporting() || !p.Recording() {
				t.Fatal("no exporter with an endpoint")
			}
			_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "root")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			_ = p.Shutdown(ctx) // the export fails; what matters is when it returns
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Shutdown took %v with a 1s deadline", d)
			}
		})
	}
}

func TestNewRefusesUnknownProtocol(t *testing.T) {
	if _, err := New(context.Background(), Config{Endpoint: "127.0.0.1:4317", Protocol: "udp"}); err == nil {
		t.Fatal("protocol udp accepted")
	}
}

func recorded(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	p, err := New(context.Background(), Config{SampleRatio: 1, Processors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return rec, p.TracerProvider()
}

// TestClientTransport: a client span per request under the caller's span,
// with the path but never the query string or a header; traceparent sent
// only when asked; no span without a recording parent.
func TestClientTransport(t *testing.T) {
	rec, tp := recorded(t)
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("request-id", "answer-1")
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	for _, inject := range []bool{false, true} {
		rec.Reset()
		ct := &ClientTransport{Next: srv.Client().Transport, Inject: inject,
			Describe: func(r *http.Request) (string, []attribute.KeyValue) { return "GET thing", nil },
			Answer: func(r *http.Response) []attribute.KeyValue {
				return []attribute.KeyValue{attribute.String("answer", r.Header.Get("request-id"))}
			}}
		ctx, parent := tp.Tracer("t").Start(context.Background(), "parent")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/a/b?secret=hunter2", nil)
		req.Header.Set("Authorization", "Bearer hunter3")
		resp, err := ct.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		parent.End()
		if req.Header.Get("traceparent") != "" {
			t.Fatal("the caller's request was changed")
		}
		if (got.Get("traceparent") != "") != inject {
			t.Fatalf("inject %v: traceparent %q sent", inject, got.Get("traceparent"))
		}
		spans := rec.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans", len(spans))
		}
		c := spans[0]
		if c.Name() != "GET thing" || c.SpanKind() != trace.SpanKindClient || c.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Fatalf("span %q kind %v parent %v", c.Name(), c.SpanKind(), c.Parent())
		}
		attrs := map[string]string{}
		for _, kv := range c.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs["url.path"] != "/a/b" || attrs["http.response.status_code"] != "404" || attrs["answer"] != "answer-1" ||
			attrs["http.request.method"] != "GET" || c.Status().Description != "HTTP 404" {
			t.Fatalf("attributes %v status %v", attrs, c.Status())
		}
		for k, v := range attrs {
			if strings.Contains(v, "hunter") {
				t.Fatalf("attribute %s = %q holds a secret", k, v)
			}
		}
	}
	// No recording span: no span; the caller's context is still sent when
	// injecting.
	rec.Reset()
	ct := &ClientTransport{Next: srv.Client().Transport, Inject: true}
	req, _ := http.NewRequestWithContext(callerContext(), http.MethodGet, srv.URL, nil)
	resp, err := ct.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans without a parent", n)
	}
	if !strings.Contains(got.Get("traceparent"), callerTrace) {
		t.Fatalf("traceparent %q, want the caller's trace", got.Get("traceparent"))
	}
}

// TestChildSeesThroughForeignSpan: a library starting its own span with
// the global (no-op) provider hides the recording span; Child still puts
// its span under the anchored one.
func TestChildSeesThroughForeignSpan(t *testing.T) {
	rec, tp := recorded(t)
	ctx, parent := tp.Tracer("t").Start(context.Background(), "check")
	ctx = Anchor(ctx)
	fctx, foreign := noop.NewTracerProvider().Tracer("kiota").Start(ctx, "kiota")
	if foreign.IsRecording() || !foreign.SpanContext().Equal(parent.SpanContext()) {
		t.Fatal("the foreign span is not the non-recording stand-in this test needs")
	}
	_, child := Child(fctx, "GET graph")
	child.End()
	parent.End()
	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Name() != "GET graph" || spans[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v", spans)
	}
	// An anchor does not adopt an unrelated context's span.
	other := trace.ContextWithSpanContext(ctx, callerContextSpan())
	if _, ok := Parent(other); ok {
		t.Fatal("Parent adopted the anchor under another span context")
	}
}

func callerContextSpan() trace.SpanContext { return trace.SpanContextFromContext(callerContext()) }
