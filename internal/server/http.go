package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/api/openapi"
	"github.com/dropzoneai/dzconnect/internal/ratelimit"
)

// httpMux serves the REST gateway under /v1/, health, readiness and the
// OpenAPI document.
func (s *Server) httpMux() (http.Handler, error) {
	conn, err := s.dialPipe()
	if err != nil {
		return nil, err
	}
	gw := runtime.NewServeMux(
		runtime.WithMiddlewares(gatewayRoute), // names the REST span (tracing.go)
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, RequestIDHeader) {
				return RequestIDHeader, true
			}
			if strings.EqualFold(key, clientCertHeader) {
				return clientCertMD, true // set by withClientCert only
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == RequestIDHeader {
				return textproto.CanonicalMIMEHeaderKey(RequestIDHeader), true
			}
			return "", false
		}),
		runtime.WithErrorHandler(errorWithRetryAfter),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	ctx := context.Background()
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		v1.RegisterOrganizationServiceHandler,
		v1.RegisterApiKeyServiceHandler,
		v1.RegisterTenantServiceHandler,
		v1.RegisterIntegrationServiceHandler,
		v1.RegisterAuditServiceHandler,
		v1.RegisterCatalogServiceHandler,
		v1.RegisterWebhookServiceHandler,
		v1.RegisterOperationServiceHandler,
		v1.RegisterSharedApplicationServiceHandler,
		v1.RegisterProvisioningServiceHandler,
	} {
		if err := register(ctx, gw, conn); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.withRateLimit(gw, withClientCert(gw)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	for pattern, h := range s.cfg.Extra {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Spec)
	})
	return mux, nil
}

// withRateLimit refuses a REST call whose caller is known to be out of
// tokens before the gateway turns it into a gRPC call (as the gRPC tap
// handle does for gRPC), and holds the answer when the caller keeps
// calling while refused (ratelimit.HoldOf): the held request occupies its
// own HTTP connection or stream, not the gateway's connection that every
// REST caller shares.
func (s *Server) withRateLimit(gw *runtime.ServeMux, next http.Handler) http.Handler {
	if s.cfg.Limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("Authorization"); v != "" {
			if err := s.cfg.Limiter.Precheck(r.Context(), ratelimit.CredentialOf(v)); err != nil {
				ratelimit.Wait(r.Context(), err)
				_, m := runtime.MarshalerForRequest(gw, r)
				runtime.HTTPError(r.Context(), gw, m, w, r, Status(err).Err())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// errorWithRetryAfter is the gateway's error handler: grpc-gateway's
// (RESOURCE_EXHAUSTED is 429, the status as JSON), plus a Retry-After
// header when the status carries google.rpc.RetryInfo (rate limits, busy
// on-demand checks): whole seconds, rounded up, at least 1.
func errorWithRetryAfter(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(ri.GetRetryDelay().AsDuration())))
				break
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
