package server

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

// newInternal builds the internal listener's servers: one HTTP server
// whose handler sends gRPC requests (HTTP/2, content-type application/grpc)
// to a gRPC server holding reflection (describing the public API) and
// health, and everything else to /metrics (Config.Internal), /debug/pprof/,
// /healthz and the detailed /readyz. Nothing here authenticates: the
// listener is for operators and scrapers, on loopback by default.
func (s *Server) newInternal() {
	s.igrpc = grpc.NewServer(grpc.MaxRecvMsgSize(MaxRequestBytes), grpc.MaxConcurrentStreams(maxConcurrentStreams))
	opts := reflection.ServerOptions{Services: s.grpc}
	reflectionv1.RegisterServerReflectionServer(s.igrpc, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(s.igrpc, reflection.NewServer(opts)) // grpcurl and older tools still ask v1alpha
	healthpb.RegisterHealthServer(s.igrpc, s.health)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyzDetails)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	for pattern, h := range s.cfg.Internal {
		mux.Handle(pattern, h)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	// gRPC clients speak HTTP/2 without TLS by prior knowledge (grpcurl
	// -plaintext) when the internal listener is plaintext.
	protocols.SetUnencryptedHTTP2(s.cfg.InternalTLS == nil)
	s.ihttp = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				s.igrpc.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      maxCallTime, // a CPU profile or trace runs up to its ?seconds=
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig:         s.cfg.InternalTLS,
		ErrorLog:          s.http.ErrorLog,
	}
}

// DependencyState is one dependency in the internal /readyz.
type DependencyState struct {
	Status string `json:"status"`          // ok or unavailable
	Error  string `json:"error,omitempty"` // why, when unavailable
}

// checkAll runs every readiness check, all at once, each under its own
// 3-second deadline, so one stalled dependency is not blamed on another.
func (s *Server) checkAll(ctx context.Context) (map[string]DependencyState, bool) {
	out := make(map[string]DependencyState, len(s.ready))
	ok := true
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for name, check := range s.ready {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				out[name] = DependencyState{Status: "unavailable", Error: truncate(err.Error(), maxLoggedError)}
				s.log.WarnContext(ctx, "readiness check failed", "dependency", name, "error", truncate(err.Error(), maxLoggedError))
				return
			}
			out[name] = DependencyState{Status: "ok"}
		})
	}
	wg.Wait()
	return out, ok
}

// readyz is the public probe: 200 {"status":"ok"} or 503 {"status":"not
// ready"}, naming no dependency (the internal /readyz and the log say
// which).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.checkAll(r.Context()); !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyzDetails is the internal probe: the same status code, with each
// dependency's state and error.
func (s *Server) readyzDetails(w http.ResponseWriter, r *http.Request) {
	deps, ok := s.checkAll(r.Context())
	body := struct {
		Status       string                     `json:"status"`
		Dependencies map[string]DependencyState `json:"dependencies"`
		Details      map[string]any             `json:"details,omitempty"`
	}{Status: "ok", Dependencies: deps}
	if len(s.cfg.Details) > 0 {
		body.Details = make(map[string]any, len(s.cfg.Details))
		for name, f := range s.cfg.Details {
			body.Details[name] = f()
		}
	}
	code := http.StatusOK
	if !ok {
		body.Status, code = "not ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}
