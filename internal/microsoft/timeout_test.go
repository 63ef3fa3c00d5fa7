package microsoft

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// stallServer answers after holding the headers (headers) or writes the
// headers and part of the body, then holds the rest, until the test ends.
func stallServer(t *testing.T, headers bool, calls *atomic.Int32) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if headers {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"value":[`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

// TestExchangeTimeout (issue 11 item 9): an exchange whose answer stalls,
// before its headers or in the middle of its body, ends after the
// transport's timeout with *mserr.TimeoutError, classified transient with
// code Timeout naming the timeout; it is not sent again at once, even
// when idempotent; the caller's own deadline stays the caller's.
func TestExchangeTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name    string
		headers bool
	}{{"headers stall", true}, {"body stalls", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := stallServer(t, tc.headers, &calls)
			rt := &retryTransport{next: srv.Client().Transport, gate: newThrottleGate(), slots: newCallerSlots(1), maxWait: 10 * time.Second,
				maxRetries: 2, backoff: time.Millisecond, timeout: timeout}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(withRetry(ctx, Idempotent), http.MethodGet, srv.URL+"/v1.0/users", nil)
			start := time.Now()
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			took := time.Since(start)
			var te *mserr.TimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want *mserr.TimeoutError", err, err)
			}
			if took < timeout || took > timeout+2*time.Second {
				t.Fatalf("took %s with a %s timeout", took, timeout)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d attempts: a timed-out exchange is not sent again at once", n)
			}
			e := mserr.Classify("graph", "GET /users", err)
			if e.Class != mserr.ClassTransient || e.Code != "Timeout" || !strings.Contains(e.Message, "Microsoft") || !strings.Contains(e.Message, timeout.String()) {
				t.Fatalf("classified %+v", e)
			}
		})
	}
	// An SDK that keeps only the text (azidentity) classifies the same.
	e := mserr.Classify("entra", "token graph", errors.New("ClientSecretCredential: server response error:\n Post \"https://x/t/oauth2/v2.0/token\": "+(&mserr.TimeoutError{After: 2 * time.Second}).Error()+". To troubleshoot..."))
	if e.Class != mserr.ClassTransient || e.Code != "Timeout" || e.Message != "no answer from Microsoft within 2s (--microsoft-timeout)" {
		t.Fatalf("classified from text: %+v", e)
	}

	// The caller's deadline, shorter than the timeout, is the caller's.
	var calls atomic.Int32
	srv := stallServer(t, true, &calls)
	rt := &retryTransport{next: srv.Client().Transport, gate: newThrottleGate(), slots: newCallerSlots(1), maxWait: time.Second, timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1.0/users", nil)
	_, err := (&http.Client{Transport: rt}).Do(req)
	var te *mserr.TimeoutError
	if errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: %v", err)
	}
}

// TestExchangeTimeoutSparesFastAnswers: the deadline is per exchange
// (each of several sequential exchanges has its own) and released with
// the body: quick answers read in full are unaffected.
func TestExchangeTimeoutSparesFastAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"value":[]}`)
	}))
	defer srv.Close()
	rt := &retryTransport{next: srv.Client().Transport, gate: newThrottleGate(), slots: newCallerSlots(1), maxWait: time.Second, timeout: time.Second}
	for range 3 {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1.0/users", nil)
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || string(b) != `{"value":[]}` {
			t.Fatalf("body %q, %v", b, err)
		}
	}
}
