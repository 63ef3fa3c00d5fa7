package jobs

import (
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// TestTraceContextInMetadata: the inserting span's context goes into a
// job's metadata beside what River put there, and comes back out.
func TestTraceContextInMetadata(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	carrier := propagation.MapCarrier{}
	telemetry.TraceContext.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	meta := withTraceContext([]byte(`{"river:unique":true}`), carrier)
	var m map[string]any
	if err := json.Unmarshal(meta, &m); err != nil || m["river:unique"] != true || m["traceparent"] == nil {
		t.Fatalf("metadata %s (%v)", meta, err)
	}
	got := linkedContext(meta)
	if got.TraceID() != tid || got.SpanID() != sid || !got.IsSampled() {
		t.Fatalf("linked %v", got)
	}
	for _, none := range []string{"", "{}", "not json", `{"traceparent":"garbage"}`} {
		if linkedContext([]byte(none)).IsValid() {
			t.Errorf("metadata %q names a span", none)
		}
	}
	if string(withTraceContext([]byte("not json"), carrier)) != "not json" {
		t.Error("unparsable metadata was replaced")
	}
}
