// Package server runs one dzconnect process's network side: the public
// listeners (the gRPC API with health, the in-process REST gateway, terse
// /healthz and /readyz, /openapi.json), optional TLS and mutual TLS, the
// internal listener (metrics, pprof, gRPC reflection, readiness details;
// internal.go) and graceful shutdown. Its interceptor authenticates and
// authorizes every RPC and is the one place errors become status codes
// (Status).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/test/bufconn"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/handlers"
	"github.com/dropzoneai/dzconnect/internal/ratelimit"
	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// MaxRequestBytes bounds every request, gRPC message or HTTP body.
const MaxRequestBytes = 1 << 20

// Connection limits of both listeners: what one client (or a slowloris)
// may hold. The longest legitimate call is a WaitOperation (at most 60s)
// or an on-demand check (bounded by its own deadline), well inside
// maxCallTime.
const (
	maxHeaderBytes       = 64 << 10         // request headers / gRPC metadata
	maxConcurrentStreams = 100              // per HTTP/2 (gRPC) connection
	maxCallTime          = 5 * time.Minute  // HTTP write timeout: a response must be done by then
	readTimeout          = 30 * time.Second // a whole HTTP request, body included (at most 1 MiB)
	idleTimeout          = 2 * time.Minute  // keep-alive connection without a request
	handshakeTimeout     = 10 * time.Second // TLS handshake of a new gRPC connection
	pingMinTime          = 10 * time.Second // clients pinging more often are disconnected (GOAWAY too_many_pings)
)

// Checker is a dependency readiness probe.
type Checker func(context.Context) error

// Config is the network configuration.
type Config struct {
	GRPCAddr string
	HTTPAddr string
	// InternalAddr is the internal listener's address; "" or "off": none.
	InternalAddr string
	// TLS of the public listeners (nil: plaintext); with ClientCAs and
	// RequireAndVerifyClientCert it is mutual TLS.
	TLS *tls.Config
	// InternalTLS of the internal listener (nil: plaintext); it never asks
	// for a client certificate.
	InternalTLS     *tls.Config
	ShutdownTimeout time.Duration
	// Extra public HTTP handlers by pattern.
	Extra map[string]http.Handler
	// Internal HTTP handlers by pattern, e.g. "GET /metrics".
	Internal map[string]http.Handler
	// Limiter applies the request rate limits to every authenticated
	// call (nil: none; docs/limits.md).
	Limiter *ratelimit.Limiter
	// Details are informational states in the internal /readyz
	// ("details": {name: value}) that never make the replica unready,
	// e.g. the API-key cache and its listener.
	Details map[string]func() any
	// Telemetry makes the server spans (tracing.go); nil: tracing off.
	Telemetry *telemetry.Provider
}

// Addrs are the bound addresses (Internal empty when there is none).
type Addrs struct {
	GRPC, HTTP, Internal string
}

// Server is the running network side.
type Server struct {
	cfg    Config
	log    *slog.Logger
	authn  *auth.Authenticator
	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	ready  map[string]Checker
	pipe   *bufconn.Listener
	tel    *telemetry.Provider
	// the internal listener's servers (nil when it is off)
	igrpc *grpc.Server
	ihttp *http.Server

	mu       sync.Mutex
	grpcLis  net.Listener
	httpLis  net.Listener
	intLis   net.Listener
	boundErr error
	bound    chan struct{}
}

// New builds the server; nothing listens until Run.
func New(cfg Config, log *slog.Logger, authn *auth.Authenticator, deps handlers.Deps, ready map[string]Checker) (*Server, error) {
	s := &Server{cfg: cfg, log: log, authn: authn, ready: ready, bound: make(chan struct{}), pipe: bufconn.Listen(1 << 20), tel: cfg.Telemetry}
	if s.tel == nil {
		s.tel = telemetry.Off()
	}
	opts := []grpc.ServerOption{
		grpcTracing(s.tel),
		grpc.ChainUnaryInterceptor(s.unary),
		grpc.ChainStreamInterceptor(s.stream),
		grpc.InTapHandle(s.tap),
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.ConnectionTimeout(handshakeTimeout),
		// Keepalive enforcement: a client may ping at most every
		// pingMinTime (also without an active call); the server pings an
		// idle connection after 2 minutes and drops it when the ping is not
		// answered in 20 seconds, and closes connections idle for 15
		// minutes (a client reconnects transparently).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: pingMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute,
			Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(pipeOrTLS{credentials.NewTLS(cfg.TLS)}))
	}
	s.grpc = grpc.NewServer(opts...)
	handlers.Register(s.grpc, deps)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	// Reflection is served on the internal listener only (internal.go).

	mux, err := s.httpMux()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           http.MaxBytesHandler(httpTracing(s.tel, mux), MaxRequestBytes),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      maxCallTime,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxConcurrentStreams, MaxDecoderHeaderTableSize: 4096},
		TLSConfig:         cfg.TLS,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.InternalAddr != "" && cfg.InternalAddr != "off" {
		s.newInternal()
	}
	return s, nil
}

// Addrs returns the bound addresses once Run has bound them.
func (s *Server) Addrs(ctx context.Context) (Addrs, error) {
	select {
	case <-s.bound:
	case <-ctx.Done():
		return Addrs{}, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boundErr != nil {
		return Addrs{}, s.boundErr
	}
	a := Addrs{GRPC: s.grpcLis.Addr().String(), HTTP: s.httpLis.Addr().String()}
	if s.intLis != nil {
		a.Internal = s.intLis.Addr().String()
	}
	return a, nil
}

// listen binds every listener, or none.
func (s *Server) listen() (gl, hl, il net.Listener, err error) {
	if gl, err = net.Listen("tcp", s.cfg.GRPCAddr); err != nil {
		return nil, nil, nil, err
	}
	if hl, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
		_ = gl.Close()
		return nil, nil, nil, err
	}
	if s.cfg.TLS != nil {
		hl = tls.NewListener(hl, s.cfg.TLS)
	}
	if s.ihttp != nil {
		if il, err = net.Listen("tcp", s.cfg.InternalAddr); err != nil {
			_ = gl.Close()
			_ = hl.Close()
			return nil, nil, nil, err
		}
		if s.cfg.InternalTLS != nil {
			il = tls.NewListener(il, s.cfg.InternalTLS)
		}
	}
	return gl, hl, il, nil
}

// Run serves until ctx ends, then shuts down gracefully: health turns
// NOT_SERVING, in-flight calls finish (up to ShutdownTimeout), listeners
// close.
func (s *Server) Run(ctx context.Context) error {
	gl, hl, il, err := s.listen()
	s.mu.Lock()
	s.grpcLis, s.httpLis, s.intLis, s.boundErr = gl, hl, il, err
	s.mu.Unlock()
	close(s.bound)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	internalAddr := "off"
	if il != nil {
		internalAddr = il.Addr().String()
	}
	s.log.InfoContext(ctx, "serving", "grpc_addr", gl.Addr().String(), "http_addr", hl.Addr().String(), "internal_addr", internalAddr,
		"tls", s.cfg.TLS != nil, "mutual_tls", s.cfg.TLS != nil && s.cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert)

	errc := make(chan error, 4)
	go func() { errc <- s.grpc.Serve(gl) }()
	go func() { errc <- s.grpc.Serve(s.pipe) }()
	go func() {
		if err := s.http.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	if il != nil {
		go func() {
			if err := s.ihttp.Serve(il); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	select {
	case err := <-errc:
		s.grpc.Stop()
		_ = s.http.Close()
		if s.ihttp != nil {
			_ = s.ihttp.Close()
			s.igrpc.Stop()
		}
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	s.health.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	_ = s.http.Shutdown(sctx)
	if s.ihttp != nil {
		// The internal listener serves operators until the public calls
		// are done; a pprof profile in progress does not hold shutdown.
		defer func() {
			_ = s.ihttp.Close()
			s.igrpc.Stop()
		}()
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		s.log.Warn("shutdown timeout: cancelling in-flight calls")
		s.grpc.Stop()
	}
	return nil
}

// dialPipe connects the gateway to the gRPC server in-process.
func (s *Server) dialPipe() (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///dzconnect-inprocess",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.pipe.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)), gatewayTracing(s.tel))
}
