package jobs

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// Tracing of jobs (docs/observability.md). A job inserted in a traced
// context (a request, or another job) stores that context's W3C trace
// context in its metadata ("traceparent", "tracestate"). Working a job is
// a span of kind consumer, "job <kind>", the root of a trace of its own,
// with a link to the span that inserted it: a job outlives the request
// that queued it, may run many times (retries, snoozes) and may be shared
// by several (unique jobs), so it is linked to, not a child of, the
// request. A job inserted without one (periodic jobs, the sweep) has no
// link.

// Metadata keys holding the inserting span's context.
const (
	metaTraceparent = "traceparent"
	metaTracestate  = "tracestate"
)

// tracing is River middleware: on insert it stores the trace context, on
// work it starts the job's span.
type tracing struct {
	river.MiddlewareDefaults
	tracer trace.Tracer
}

var (
	_ rivertype.JobInsertMiddleware = (*tracing)(nil)
	_ rivertype.WorkerMiddleware    = (*tracing)(nil)
)

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &tracing{tracer: tp.Tracer(telemetry.InstrumentationName)}
}

// InsertMany adds the inserting span's context to each job's metadata.
func (t *tracing) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		carrier := propagation.MapCarrier{}
		telemetry.TraceContext.Inject(ctx, carrier)
		for _, p := range params {
			p.Metadata = withTraceContext(p.Metadata, carrier)
		}
	}
	return doInner(ctx)
}

// withTraceContext merges the carrier's keys into a job's metadata (a
// JSON object; anything else is left alone).
func withTraceContext(meta []byte, carrier propagation.MapCarrier) []byte {
	m := map[string]json.RawMessage{}
	if len(meta) > 0 {
		if err := json.Unmarshal(meta, &m); err != nil {
			return meta
		}
	}
	for _, k := range []string{metaTraceparent, metaTracestate} {
		if v := carrier.Get(k); v != "" {
			b, _ := json.Marshal(v)
			m[k] = b
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return meta
	}
	return out
}

// linkedContext is the span context a job's metadata names (invalid when
// none).
func linkedContext(meta []byte) trace.SpanContext {
	var m struct {
		Traceparent string `json:"traceparent"`
		Tracestate  string `json:"tracestate"`
	}
	if len(meta) == 0 || json.Unmarshal(meta, &m) != nil || m.Traceparent == "" {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{metaTraceparent: m.Traceparent}
	if m.Tracestate != "" {
		carrier[metaTracestate] = m.Tracestate
	}
	return trace.SpanContextFromContext(telemetry.TraceContext.Extract(context.Background(), carrier))
}

// Work runs the job inside its span.
func (t *tracing) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "river"),
			attribute.String("river.job.kind", job.Kind),
			attribute.Int64("river.job.id", job.ID),
			attribute.Int("river.job.attempt", job.Attempt),
			attribute.String("river.queue", job.Queue),
		),
	}
	if sc := linkedContext(job.Metadata); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := t.tracer.Start(ctx, "job "+job.Kind, opts...)
	defer span.End()
	err := doInner(telemetry.Anchor(ctx))
	if span.IsRecording() {
		var (
			snooze *river.JobSnoozeError
			cancel *river.JobCancelError
		)
		switch {
		case err == nil:
			span.SetAttributes(attribute.String("river.job.outcome", "completed"))
		case errors.As(err, &snooze):
			span.SetAttributes(attribute.String("river.job.outcome", "snoozed"))
		case errors.As(err, &cancel):
			span.SetAttributes(attribute.String("river.job.outcome", "canceled"))
			telemetry.Fail(span, "job canceled")
		default:
			span.SetAttributes(attribute.String("river.job.outcome", "failed"))
			telemetry.Fail(span, "job failed")
		}
	}
	return err
}
