// Package telemetry is dzconnect's OpenTelemetry tracing (docs/observability.md):
// the tracer provider with its OTLP exporter (off by default), the W3C trace
// context and baggage propagators, a slog handler that puts the trace and
// span IDs on every log line, and the helpers the adapters use to start
// their spans (Child, ClientTransport).
//
// Server spans (gRPC, REST) and River job spans are started with the
// provider built here, passed explicitly (nothing global is set). Every
// other span (Postgres, Vault, Microsoft, operation steps) is a child: it
// is started with the tracer provider of the recording span already in the
// context, and not at all without one. So the adapters need no wiring, and
// background work outside a traced request or job (River's polling, token
// renewal) makes no root spans.
//
// With the exporter off (no --otlp-endpoint) the provider is OpenTelemetry's
// no-op one: no span is recorded, no exporter or batch goroutine runs, and a
// span costs a context lookup. Trace context still flows: a caller's
// traceparent is extracted by the server, carried through the context into
// job metadata and outgoing Vault requests, and its IDs are on the log
// lines of the call.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config configures tracing.
type Config struct {
	// Endpoint is the OTLP collector: host:port, or an http(s) URL (for
	// the http protocol it may carry the path, default /v1/traces). Empty:
	// the exporter is off.
	Endpoint string
	// Protocol is "grpc" (default, OTLP/gRPC, usually port 4317) or "http"
	// (OTLP/HTTP protobuf, usually port 4318).
	Protocol string
	// Insecure sends to the collector without TLS (also implied by an
	// http:// Endpoint). internal/config only allows it towards a loopback
	// collector unless plaintext is allowed explicitly.
	Insecure bool
	// SampleRatio is the share of root traces sampled (0..1); a span with
	// a parent follows its parent's decision (a caller's traceparent
	// flags included).
	SampleRatio float64
	// ServiceName and ServiceVersion are the resource's service.name and
	// service.version.
	ServiceName, ServiceVersion string
	// Processors are extra span processors (tests: tracetest's
	// SpanRecorder). With one, spans are recorded even without an
	// Endpoint.
	Processors []sdktrace.SpanProcessor
}

// Provider is the process's tracing.
type Provider struct {
	tp  trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil: nothing is recorded
	// exporting: an OTLP exporter (and its batch goroutine) runs
	exporting bool
}

// Propagator is the W3C trace context and baggage propagator the server
// extracts from callers (traceparent, tracestate, baggage).
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// TraceContext is the W3C trace context propagator alone: what is written
// into job metadata and outgoing Vault requests (baggage, which a caller
// chooses, is not carried further).
var TraceContext propagation.TextMapPropagator = propagation.TraceContext{}

// Off is tracing with no exporter and nothing recorded.
func Off() *Provider { return &Provider{tp: noop.NewTracerProvider()} }

// New builds the provider. Without an Endpoint and Processors it is Off:
// no exporter is created and no goroutine started.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" && len(cfg.Processors) == 0 {
		return Off(), nil
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "dzconnect"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	ratio := min(max(cfg.SampleRatio, 0), 1)
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	p := &Provider{}
	if cfg.Endpoint != "" {
		exp, err := newExporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		p.exporting = true
	}
	for _, sp := range cfg.Processors {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	p.sdk = sdktrace.NewTracerProvider(opts...)
	p.tp = p.sdk
	return p, nil
}

// newExporter builds the OTLP exporter; it connects lazily, so an
// unreachable collector does not stop the start (spans are dropped, and
// the SDK logs it through OpenTelemetry's error handler).
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	withURL := strings.Contains(cfg.Endpoint, "://")
	if withURL {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" {
			return nil, errors.New("otlp endpoint: not host:port or an http(s) URL")
		}
		if u.Scheme == "http" {
			cfg.Insecure = true
		}
	}
	switch cfg.Protocol {
	case "", "grpc":
		var opts []otlptracegrpc.Option
		if withURL {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	case "http":
		var opts []otlptracehttp.Option
		if withURL {
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("otlp protocol %q: want grpc or http", cfg.Protocol)
}

// TracerProvider is what server and job spans are started with.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Recording reports whether spans are recorded at all (an exporter or a
// processor is configured).
func (p *Provider) Recording() bool { return p.sdk != nil }

// Exporting reports whether an OTLP exporter runs.
func (p *Provider) Exporting() bool { return p.exporting }

// Shutdown flushes the spans not yet exported and stops the exporter,
// giving up when ctx ends (bound it: a collector that does not answer must
// not hold the process's exit).
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// FlushTimeout bounds Shutdown at exit.
const FlushTimeout = 5 * time.Second
