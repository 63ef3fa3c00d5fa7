package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// Server spans (docs/observability.md): a span per gRPC call (otelgrpc's
// stats handler: rpc.system, rpc.service, rpc.method, rpc.grpc.status_code)
// and per REST request (otelhttp, renamed after the gateway's route: "POST
// /v1/{name=organizations/*/tenants/*/integrations/*}:check"), the
// gateway's call to the gRPC server in between as a client span, so one
// REST call is one trace. The interceptor adds the call's request ID and
// the caller's organization ID. Health checks and /healthz, /readyz make
// no span. Request and response bodies, metadata and headers are never
// recorded (otelgrpc and otelhttp record none by default; message events
// stay off).

// tracedMethod leaves gRPC health checks out.
func tracedMethod(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/")
}

// grpcTracing is the public gRPC server's stats handler.
func grpcTracing(tel *telemetry.Provider) grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tel.TracerProvider()), otelgrpc.WithPropagators(telemetry.Propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), otelgrpc.WithFilter(tracedMethod)))
}

// gatewayTracing is the gateway's loopback gRPC client's stats handler: it
// sends the REST span's context to the gRPC server.
func gatewayTracing(tel *telemetry.Provider) grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tel.TracerProvider()), otelgrpc.WithPropagators(telemetry.Propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider())))
}

// routeKey holds, in a REST request's context, the gateway route that
// names its span (otelhttp names the span again when the handler returns).
type routeKey struct{}

// httpTracing wraps the public HTTP handler.
func httpTracing(tel *telemetry.Provider, h http.Handler) http.Handler {
	traced := otelhttp.NewHandler(h, "rest",
		otelhttp.WithTracerProvider(tel.TracerProvider()), otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }),
		// Low cardinality until the gateway names the route (gatewayRoute).
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if route, _ := r.Context().Value(routeKey{}).(*string); route != nil && *route != "" {
				return r.Method + " " + *route
			}
			if r.URL.Path == "/openapi.json" {
				return r.Method + " /openapi.json"
			}
			return "HTTP " + r.Method
		}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var route string
		traced.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
	})
}

// gatewayRoute names the REST span after the gateway's route pattern.
func gatewayRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			// The route pattern is known here (the path pattern string only
			// inside the generated handler).
			if p, ok := runtime.HTTPPattern(r.Context()); ok {
				route := p.String()
				if holder, _ := r.Context().Value(routeKey{}).(*string); holder != nil {
					*holder = route
				}
				span.SetName(r.Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
		}
		next(w, r, params)
	}
}

// annotateCall puts the call's request ID on its server span.
func annotateCall(ctx context.Context, requestID string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(telemetry.RequestID.String(requestID))
	}
}

// annotatePrincipal puts the caller's organization on its server span (an
// ID, never a name the caller chose).
func annotatePrincipal(ctx context.Context, p auth.Principal) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() && p.Org != uuid.Nil {
		span.SetAttributes(telemetry.OrganizationID.String(p.Org.String()))
	}
}
