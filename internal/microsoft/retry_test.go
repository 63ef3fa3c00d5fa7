package microsoft

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// TestRetryDecision pins which request/answer combinations are sent again.
func TestRetryDecision(t *testing.T) {
	t.Parallel()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, tc := range []struct {
		name string
		a    attemptOutcome
		want retryKind
	}{
		{"read 200", attemptOutcome{idempotent: true, status: 200}, retryNo},
		{"read 404", attemptOutcome{idempotent: true, status: 404}, retryNo},
		{"read 400", attemptOutcome{idempotent: true, status: 400}, retryNo},
		{"read 429", attemptOutcome{idempotent: true, status: 429, retryAfter: true}, retryAfterWait},
		{"read 429 without Retry-After", attemptOutcome{idempotent: true, status: 429}, retryAfterWait},
		{"read 503 with Retry-After", attemptOutcome{idempotent: true, status: 503, retryAfter: true}, retryAfterWait},
		{"read 503", attemptOutcome{idempotent: true, status: 503}, retryBackoff},
		{"read 500", attemptOutcome{idempotent: true, status: 500}, retryBackoff},
		{"read 502", attemptOutcome{idempotent: true, status: 502}, retryBackoff},
		{"read 504", attemptOutcome{idempotent: true, status: 504}, retryBackoff},
		{"read 501", attemptOutcome{idempotent: true, status: 501}, retryNo},
		{"read reset after sending", attemptOutcome{idempotent: true, err: reset, sent: true}, retryBackoff},
		{"read dial refused", attemptOutcome{idempotent: true, err: dialErr}, retryBackoff},
		{"read canceled", attemptOutcome{idempotent: true, err: context.Canceled}, retryNo},
		{"read deadline", attemptOutcome{idempotent: true, err: context.DeadlineExceeded, sent: true}, retryNo},
		// Non-idempotent: only when the failure proves it did not land.
		{"create 201", attemptOutcome{status: 201}, retryNo},
		{"create 429", attemptOutcome{status: 429, retryAfter: true}, retryAfterWait},
		{"create 503 with Retry-After", attemptOutcome{status: 503, retryAfter: true}, retryNo},
		{"create 503", attemptOutcome{status: 503}, retryNo},
		{"create 500", attemptOutcome{status: 500}, retryNo},
		{"create 502", attemptOutcome{status: 502}, retryNo},
		{"create 504", attemptOutcome{status: 504}, retryNo},
		{"create 409", attemptOutcome{status: 409}, retryNo},
		{"create dial refused, nothing sent", attemptOutcome{err: dialErr}, retryBackoff},
		{"create reset after sending", attemptOutcome{err: reset, sent: true}, retryNo},
		{"create EOF after sending", attemptOutcome{err: errors.New("EOF"), sent: true}, retryNo},
		{"create deadline, nothing sent", attemptOutcome{err: context.DeadlineExceeded}, retryNo},
		// A stalled exchange (--microsoft-timeout) is not repeated at once.
		{"read exchange timeout", attemptOutcome{idempotent: true, err: &mserr.TimeoutError{After: time.Second, Sent: true}, sent: true}, retryNo},
		{"create exchange timeout, nothing sent", attemptOutcome{err: &mserr.TimeoutError{After: time.Second}}, retryNo},
	} {
		if got := retryDecision(tc.a); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDeclaredIdempotent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		decl         Retry
		want         bool
	}{
		{http.MethodGet, "/v1.0/users", RetryUndeclared, true},
		{http.MethodPost, "/v1.0/applications", RetryUndeclared, false},
		{http.MethodPut, "/arm/x/roleAssignments/y", RetryUndeclared, false}, // a PUT must say its name is deterministic
		{http.MethodDelete, "/v1.0/applications/x", RetryUndeclared, false},
		{http.MethodPatch, "/v1.0/applications(uniqueName='k')", Idempotent, true},
		{http.MethodPost, "/v1.0/applications/x/addPassword", NotIdempotent, false},
		{http.MethodGet, "/v1.0/users", NotIdempotent, false},
		{http.MethodPost, "/tenant/oauth2/v2.0/token", NotIdempotent, true}, // a token request never acts
	} {
		req := httptest.NewRequestWithContext(withRetry(context.Background(), tc.decl), tc.method, "https://h"+tc.path, nil)
		if got := declaredIdempotent(req); got != tc.want {
			t.Errorf("%s %s declared %d: got %v, want %v", tc.method, tc.path, tc.decl, got, tc.want)
		}
	}
}

// A non-idempotent request that reached the server is not sent again when
// the connection drops before the answer: it may have landed. An
// idempotent one is.
func TestNotIdempotentNotResentAfterLostAnswer(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			panic(http.ErrAbortHandler) // the request landed; the answer is lost
		}
		w.WriteHeader(200)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	rt := &retryTransport{next: srv.Client().Transport, gate: newThrottleGate(), slots: newCallerSlots(1), maxWait: 10 * time.Second,
		maxRetries: 2, backoff: 10 * time.Millisecond, retryMargin: 20 * time.Millisecond}
	hc := &http.Client{Transport: rt}
	do := func(ctx context.Context, method string) error {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+"/applications/x/addPassword", strings.NewReader(`{}`))
		resp, err := hc.Do(req)
		if resp != nil {
			_ = resp.Body.Close()
		}
		return err
	}
	if err := do(withRetry(t.Context(), NotIdempotent), http.MethodPost); err == nil || n.Load() != 1 {
		t.Fatalf("non-idempotent POST after a lost answer: err %v, %d requests (want an error after 1)", err, n.Load())
	}
	if err := do(withRetry(t.Context(), Idempotent), http.MethodPost); err != nil || n.Load() != 3 {
		t.Fatalf("idempotent request after a lost answer: err %v, %d requests (want success on the retry, 3 in all)", err, n.Load())
	}
}

// A non-idempotent request that never left (connection refused) is sent
// again: it cannot have landed.
func TestNotIdempotentResentWhenNothingWasSent(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens: dials are refused
	var attempts atomic.Int32
	rt := &retryTransport{next: countingRT{&attempts, http.DefaultTransport}, gate: newThrottleGate(), slots: newCallerSlots(1),
		maxWait: 10 * time.Second, maxRetries: 2, backoff: 5 * time.Millisecond, retryMargin: 20 * time.Millisecond}
	req, _ := http.NewRequestWithContext(withRetry(t.Context(), NotIdempotent), http.MethodPost, "http://"+addr+"/applications", strings.NewReader(`{}`))
	if _, err := (&http.Client{Transport: rt}).Do(req); err == nil {
		t.Fatal("want a dial error")
	}
	if got := attempts.Load(); got != 3 {
		t.Fatalf("%d attempts, want 3 (retried because nothing was sent)", got)
	}
}

type countingRT struct {
	n    *atomic.Int32
	next http.RoundTripper
}

func (c countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}
