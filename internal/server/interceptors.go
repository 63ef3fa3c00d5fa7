package server

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/ratelimit"
	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// RequestIDHeader carries the per-call ID, in and out.
const RequestIDHeader = "x-request-id"

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// callID returns the caller's x-request-id when well-formed, else a new one.
func callID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && requestIDRE.MatchString(v[0]) {
			return v[0]
		}
	}
	return uuid.NewString()
}

func isPublic(method string) bool {
	for _, p := range publicPrefixes {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}

// authorize authenticates the caller and applies the method's policy.
func (s *Server) authorize(ctx context.Context, method string, req any) (auth.Principal, error) {
	pol, ok := policies[method]
	if !ok {
		return auth.Principal{}, apperr.New(apperr.PermissionDenied, "method %s has no authorization policy", method)
	}
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	var (
		p   auth.Principal
		err error
	)
	if header == "" {
		if ids := clientIdentities(ctx); len(ids) > 0 {
			// Mutual TLS without a bearer: the certificate is the
			// credential when the configuration maps its identity.
			p, err = s.authn.AuthenticateCertificate(ids)
		} else {
			p, err = s.authn.Authenticate(ctx, header)
		}
	} else {
		p, err = s.authn.Authenticate(ctx, header)
	}
	if err != nil {
		return auth.Principal{}, err
	}
	return p, auth.Authorize(p, pol.rule, pol.target(req))
}

// unary is the one interceptor every RPC goes through: call ID, panic
// recovery, authentication and authorization, audit context, the error to
// status mapping, and one log line per call.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	if isPublic(info.FullMethod) {
		return handler(ctx, req)
	}
	// A caller known to be out of tokens was refused by the tap handle
	// (before a stream existed), or, when its refusal is to be held, is
	// answered here after the hold: before its credential is looked up and
	// before anything else (no call ID, no per-call log line: the limiter
	// logs refusals aggregated).
	if lerr, ok := ctx.Value(heldRefusalKey{}).(error); ok {
		ratelimit.Wait(ctx, lerr)
		return nil, Status(lerr).Err()
	}
	cred := s.credential(ctx)
	start := time.Now()
	id := callID(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	var (
		principal auth.Principal
		limited   bool // refused by a rate limit: logged aggregated by the limiter
	)
	annotateCall(ctx, id) // ctx holds the server span: the log line below carries its IDs
	ctx = telemetry.Anchor(ctx)
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "panic in handler", "request_id", id, "method", info.FullMethod,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
			return
		}
		st := Status(err)
		if !limited {
			s.logCall(ctx, info.FullMethod, id, principal, st, err, time.Since(start))
		}
		if err != nil {
			resp, err = nil, st.Err()
		}
	}()
	// Every authenticated call counts against its caller's and its
	// organization's rate, allowed by its policy or not. A refused call
	// goes no further (nothing in Postgres or Vault).
	principal, err = s.authorize(ctx, info.FullMethod, req)
	annotatePrincipal(ctx, principal) // also when refused: the caller was authenticated
	if lerr := s.limit(ctx, principal, cred); lerr != nil {
		limited = true
		s.hold(ctx, lerr)
		return nil, lerr
	}
	if err != nil {
		return nil, err
	}
	reqID := id
	if r, ok := req.(interface{ GetRequestId() string }); ok && r.GetRequestId() != "" {
		reqID = r.GetRequestId()
	}
	ctx = auth.WithPrincipal(ctx, principal)
	ctx = audit.WithCall(ctx, audit.Call{Actor: principal.Actor(), Method: info.FullMethod, RequestID: reqID})
	return handler(ctx, req)
}

// limit applies the request rate limits to an authenticated principal.
// The service admin (the bootstrap key, or a workload identity mapped to
// it) is not limited; neither is a call that did not authenticate (the
// zero principal).
func (s *Server) limit(ctx context.Context, p auth.Principal, cred ratelimit.Credential) error {
	if s.cfg.Limiter == nil || p.ServiceAdmin || p.Org == uuid.Nil {
		return nil
	}
	return s.cfg.Limiter.Allow(ctx, ratelimit.Caller{Org: p.Org, ID: p.Actor(), Cred: cred})
}

// credential is the hash of the call's authorization header, by which the
// limiter knows a caller before authentication (zero without a limiter
// or a header).
// tap runs in the connection's reader before a stream exists: a caller
// known to be out of tokens is refused there, before gRPC creates the
// call's goroutine or reads its message, so a flood of refused calls
// costs the server a map lookup and a header frame each. The status keeps
// its details (RetryInfo, ErrorInfo). A refusal to be held (a caller that
// keeps calling while refused, ratelimit.HoldOf) cannot wait here, as that
// would stop the whole connection: the stream is let through with the
// refusal in its context, and the unary interceptor answers it after the
// hold, holding one of the flooding client's stream slots meanwhile.
func (s *Server) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if s.cfg.Limiter == nil || isPublic(info.FullMethodName) {
		return ctx, nil
	}
	v := info.Header.Get("authorization")
	if len(v) == 0 || v[0] == "" {
		return ctx, nil
	}
	if err := s.cfg.Limiter.Precheck(ctx, ratelimit.CredentialOf(v[0])); err != nil {
		if ratelimit.HoldOf(err) > 0 && !sharedConn(ctx) {
			return context.WithValue(ctx, heldRefusalKey{}, err), nil
		}
		return ctx, Status(err).Err()
	}
	return ctx, nil
}

// heldRefusalKey holds, in a stream's context, the rate limit refusal the
// tap handle let through to be answered after its hold.
type heldRefusalKey struct{}

// hold delays a rate limit refusal's answer by its hold (ratelimit.HoldOf),
// except on a connection many callers share: the REST gateway's in-process
// connection, where held streams would take the stream slots of other
// callers' REST calls (REST holds before the gateway, withRateLimit).
func (s *Server) hold(ctx context.Context, err error) {
	if !sharedConn(ctx) {
		ratelimit.Wait(ctx, err)
	}
}

// sharedConn reports whether the call came over the REST gateway's
// in-process connection, which carries every REST caller's calls.
func sharedConn(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	return ok && p.Addr != nil && p.Addr.Network() == "bufconn"
}

func (s *Server) credential(ctx context.Context) ratelimit.Credential {
	if s.cfg.Limiter == nil {
		return ratelimit.Credential{}
	}
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 && v[0] != "" {
		return ratelimit.CredentialOf(v[0])
	}
	return ratelimit.Credential{}
}

// maxLoggedError bounds an error message in a log line (bytes).
const maxLoggedError = 1024

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes cut)", len(s)-cut)
}

// logCall writes the call's log line: Info on success, Warn for the
// caller's errors, Error for the service's. Only the status message and
// the classified cause are logged, never request or response bodies.
func (s *Server) logCall(ctx context.Context, method, id string, p auth.Principal, st *status.Status, err error, d time.Duration) {
	attrs := []any{"request_id", id, "method", method, "code", st.Code().String(), "duration_ms", d.Milliseconds()}
	if p.ServiceAdmin || p.Org != uuid.Nil {
		attrs = append(attrs, "actor", p.Actor())
	}
	level := slog.LevelInfo
	switch st.Code() {
	case codes.OK:
	case codes.Internal, codes.Unavailable, codes.DataLoss, codes.Unknown, codes.DeadlineExceeded:
		level = slog.LevelError
		attrs = append(attrs, "error", truncate(err.Error(), maxLoggedError))
	default:
		// The caller's errors quote what the caller sent (a name, a
		// field): bounded, so a request cannot write megabytes of log.
		level = slog.LevelWarn
		attrs = append(attrs, "error", truncate(st.Message(), maxLoggedError))
	}
	s.log.Log(ctx, level, "rpc", attrs...)
}

// stream guards streaming RPCs: only public ones (health watch) exist;
// reflection is served on the internal listener, without this
// interceptor.
func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !isPublic(info.FullMethod) {
		return status.Error(codes.PermissionDenied, "streaming method has no authorization policy")
	}
	return handler(srv, ss)
}
