package telemetry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ClientTransport makes one client span per HTTP request sent through it,
// under the recording span of the request's context (none without one).
// The span records the method, the server address and port, the path
// (never the query string), the status code and what Describe and Answer
// add; never a header, a body or an error's text (a *url.Error quotes the
// whole URL). It ends when the answer's headers are in.
type ClientTransport struct {
	Next http.RoundTripper
	// Describe names the span and adds request attributes (nil: "HTTP
	// <method>").
	Describe func(*http.Request) (string, []attribute.KeyValue)
	// Answer adds attributes of the response (nil: none).
	Answer func(*http.Response) []attribute.KeyValue
	// Path is the url.path recorded (nil: the request's path; "": none),
	// for services whose paths may hold a secret.
	Path func(*http.Request) string
	// Inject writes the W3C traceparent into the request: only towards
	// services that are ours to trace (Vault), never to third parties.
	Inject bool
}

// RoundTrip implements http.RoundTripper.
func (t *ClientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if _, ok := Parent(ctx); !ok {
		if t.Inject && trace.SpanContextFromContext(ctx).IsValid() {
			req = injected(ctx, req)
		}
		return t.Next.RoundTrip(req)
	}
	name := "HTTP " + req.Method
	var extra []attribute.KeyValue
	if t.Describe != nil {
		name, extra = t.Describe(req)
	}
	path := req.URL.Path
	if t.Path != nil {
		path = t.Path(req)
	}
	attrs := append([]attribute.KeyValue{
		attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Hostname()),
	}, extra...)
	if path != "" {
		attrs = append(attrs, attribute.String("url.path", path))
	}
	if p, err := strconv.Atoi(req.URL.Port()); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	ctx, span := Child(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	if t.Inject {
		req = injected(ctx, req)
	} else {
		req = req.WithContext(ctx)
	}
	resp, err := t.Next.RoundTrip(req)
	if err != nil {
		Fail(span, transportFailure(ctx, err))
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if t.Answer != nil {
		span.SetAttributes(t.Answer(resp)...)
	}
	if resp.StatusCode >= 400 {
		Fail(span, "HTTP "+strconv.Itoa(resp.StatusCode))
	}
	return resp, nil
}

// injected returns a copy of req with ctx carrying traceparent in its
// headers (a RoundTripper must not change the caller's request).
func injected(ctx context.Context, req *http.Request) *http.Request {
	r := req.Clone(ctx)
	TraceContext.Inject(ctx, propagation.HeaderCarrier(r.Header))
	return r
}

// transportFailure classifies a failed exchange without quoting it.
func transportFailure(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return "deadline exceeded"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport error"
}
