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

// Child starts a span under the recording span in ctx, with that span's
// tracer provider. Without a recording span it starts nothing and returns
// ctx unchanged with a span on which every call is a no-op: background work
// outside a traced call makes no root spans, and with tracing off a child
// costs one context lookup.
func Child(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(InstrumentationName).Start(ctx, name, opts...)
}

// Fail marks span failed with description, which must be fixed text or
// classified, never an error's message: those can quote URLs with query
// strings, Microsoft's answers or SQL values.
func Fail(span trace.Span, description string) {
	span.SetStatus(codes.Error, description)
}
