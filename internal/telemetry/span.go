package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names dzconnect's tracers.
const InstrumentationName = "github.com/dropzoneai/dzconnect"

// Attribute keys of dzconnect's own (semantic-convention keys are spelled
// where they are set).
const (
	// OrganizationID is the caller's organization (a UUID), on server spans.
	OrganizationID = attribute.Key("dzconnect.organization_id")
	// RequestID is the call's x-request-id (the caller's when well formed,
	// else the one the server made), on server spans and in the call's log line.
	RequestID = attribute.Key("dzconnect.request_id")
	// IntegrationID is the integration a check or an operation concerns.
	IntegrationID = attribute.Key("dzconnect.integration_id")
)

// noSpan is what Child returns when it starts nothing: ending it or setting
// its attributes does nothing.
var noSpan = trace.SpanFromContext(context.Background())

type anchorKey struct{}

// Anchor returns ctx remembering its recording span (if any). Libraries
// that start spans of their own with OpenTelemetry's global provider, which
// dzconnect leaves unset (kiota, under msgraph-sdk-go), put a non-recording
// span with the same IDs in the context; Child sees through it to the
// anchored span, so a Graph request is still a child of the check. Child
// anchors the spans it starts; the server's interceptor and the job
// middleware anchor theirs.
func Anchor(ctx context.Context) context.Context {
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		return context.WithValue(ctx, anchorKey{}, s)
	}
	return ctx
}

// Parent returns the recording span new child spans of ctx belong under:
// the context's span, or the anchored one behind a foreign non-recording
// span with its IDs; false when there is none (tracing off, sampled out,
// or no traced call).
func Parent(ctx context.Context) (trace.Span, bool) {
	s := trace.SpanFromContext(ctx)
	if s.IsRecording() {
		return s, true
	}
	if a, ok := ctx.Value(anchorKey{}).(trace.Span); ok && a.IsRecording() && a.SpanContext().Equal(s.SpanContext()) {
		return a, true
	}
	return nil, false
}

// Child starts a span under ctx's recording span (Parent), with that
// span's tracer provider. Without one it starts nothing and returns ctx
// unchanged with a span on which every call is a no-op: background work
// outside a traced call makes no root spans, and with tracing off a child
// costs a context lookup.
func Child(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent, ok := Parent(ctx)
	if !ok {
		return ctx, noSpan
	}
	ctx, span := parent.TracerProvider().Tracer(InstrumentationName).Start(trace.ContextWithSpan(ctx, parent), name, opts...)
	return context.WithValue(ctx, anchorKey{}, span), span
}

// Fail marks span failed with description, which must be fixed text or
// classified, never an error's message: those can quote URLs with query
// strings, Microsoft's answers or SQL values.
func Fail(span trace.Span, description string) {
	span.SetStatus(codes.Error, description)
}
