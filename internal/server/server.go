// Package server runs one dzconnect process's network side: the gRPC
// server (with health and reflection), the in-process REST gateway,
// /healthz, /readyz and /openapi.json, optional TLS and graceful shutdown.
// Its interceptor authorizes every RPC and is the one place errors become
// status codes (Status).
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
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/handlers"
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
	GRPCAddr        string
	HTTPAddr        string
	TLS             *tls.Config // nil: plaintext
	ShutdownTimeout time.Duration
	// Extra HTTP handlers by pattern, e.g. "GET /metrics".
	Extra map[string]http.Handler
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

	mu       sync.Mutex
	grpcLis  net.Listener
	httpLis  net.Listener
	boundErr error
	bound    chan struct{}
}

// New builds the server; nothing listens until Run.
func New(cfg Config, log *slog.Logger, authn *auth.Authenticator, deps handlers.Deps, ready map[string]Checker) (*Server, error) {
	s := &Server{cfg: cfg, log: log, authn: authn, ready: ready, bound: make(chan struct{}), pipe: bufconn.Listen(1 << 20)}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unary),
		grpc.ChainStreamInterceptor(s.stream),
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
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	handlers.Register(s.grpc, deps)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	mux, err := s.httpMux()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           http.MaxBytesHandler(mux, MaxRequestBytes),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      maxCallTime,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxConcurrentStreams, MaxDecoderHeaderTableSize: 4096},
		TLSConfig:         cfg.TLS,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addrs returns the bound gRPC and HTTP addresses once Run has bound them.
func (s *Server) Addrs(ctx context.Context) (grpcAddr, httpAddr string, err error) {
	select {
	case <-s.bound:
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boundErr != nil {
		return "", "", s.boundErr
	}
	return s.grpcLis.Addr().String(), s.httpLis.Addr().String(), nil
}

// Run serves until ctx ends, then shuts down gracefully: health turns
// NOT_SERVING, in-flight calls finish (up to ShutdownTimeout), listeners
// close.
func (s *Server) Run(ctx context.Context) error {
	gl, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err == nil {
		var hl net.Listener
		hl, err = net.Listen("tcp", s.cfg.HTTPAddr)
		if err != nil {
			gl.Close()
		} else {
			if s.cfg.TLS != nil {
				hl = tls.NewListener(hl, s.cfg.TLS)
			}
			s.mu.Lock()
			s.grpcLis, s.httpLis = gl, hl
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	s.boundErr = err
	s.mu.Unlock()
	close(s.bound)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.InfoContext(ctx, "serving", "grpc_addr", gl.Addr().String(), "http_addr", s.httpLis.Addr().String(), "tls", s.cfg.TLS != nil)

	errc := make(chan error, 3)
	go func() { errc <- s.grpc.Serve(gl) }()
	go func() { errc <- s.grpc.Serve(s.pipe) }()
	go func() {
		if err := s.http.Serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	select {
	case err := <-errc:
		s.grpc.Stop()
		_ = s.http.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	s.health.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	_ = s.http.Shutdown(sctx)
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
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
}
