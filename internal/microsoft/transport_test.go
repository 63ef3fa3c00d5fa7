package microsoft

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// recorder answers from a script and records when and what it was sent.
type recorder struct {
	mu     sync.Mutex
	script []func(w http.ResponseWriter)
	times  []time.Time
	bodies []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.times)
	r.times = append(r.times, time.Now())
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	if n < len(r.script) {
		r.script[n](w)
		return
	}
	w.WriteHeader(200)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.times)
}

func status(code int, headers ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func newTestTransport(t *testing.T, rec *recorder) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewTLSServer(rec)
	t.Cleanup(srv.Close)
	rt := &retryTransport{next: srv.Client().Transport, gate: newThrottleGate(), slots: newCallerSlots(1), maxWait: 10 * time.Second,
		maxRetries: 2, backoff: 10 * time.Millisecond, retryMargin: 20 * time.Millisecond}
	return srv, &http.Client{Transport: rt}
}

func get(t *testing.T, ctx context.Context, hc *http.Client, url string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	return resp, err
}

func TestRetryAfterMillisecondsHonoured(t *testing.T) {
	t.Parallel()
	rec := &recorder{script: []func(http.ResponseWriter){status(429, "x-ms-retry-after-ms", "300", "Retry-After", "1")}}
	srv, hc := newTestTransport(t, rec)
	resp, err := get(t, t.Context(), hc, srv.URL)
	if err != nil || resp.StatusCode != 200 || rec.count() != 2 {
		t.Fatalf("%v %v %d", resp, err, rec.count())
	}
	if gap := rec.times[1].Sub(rec.times[0]); gap < 300*time.Millisecond {
		t.Fatalf("retried after %v, before x-ms-retry-after-ms", gap)
	}
}

func TestRetryAfterDateHonoured(t *testing.T) {
	t.Parallel()
	until := time.Now().Add(time.Second)
	rec := &recorder{script: []func(http.ResponseWriter){status(503, "Retry-After", until.UTC().Format(http.TimeFormat))}}
	srv, hc := newTestTransport(t, rec)
	if resp, err := get(t, t.Context(), hc, srv.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if rec.times[1].Before(until.Truncate(time.Second)) {
		t.Fatalf("retried at %v, before the Retry-After date %v", rec.times[1], until)
	}
}

func TestThrottleBudgetAndGate(t *testing.T) {
	t.Parallel()
	rec := &recorder{script: []func(http.ResponseWriter){status(429, "Retry-After", "1")}}
	srv, hc := newTestTransport(t, rec)
	ctx := withCaller(withThrottleBudget(t.Context(), 500*time.Millisecond), "org", "tenant", "client")
	start := time.Now()
	resp, err := get(t, ctx, hc, srv.URL)
	if err != nil || resp.StatusCode != 429 || time.Since(start) >= time.Second {
		t.Fatalf("a wait past the budget was started: %v %v %v", resp, err, time.Since(start))
	}
	// The same caller's next request within Retry-After is not sent.
	_, err = get(t, withCaller(withThrottleBudget(t.Context(), 100*time.Millisecond), "org", "tenant", "client"), hc, srv.URL)
	var me *mserr.Error
	if !errors.As(err, &me) || me.Class != mserr.ClassThrottled || me.RetryAfter <= 0 || rec.count() != 1 {
		t.Fatalf("gate: %v, %d requests", err, rec.count())
	}
	// Another caller is not held back.
	if resp, err := get(t, withCaller(t.Context(), "org", "tenant", "other"), hc, srv.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("other caller: %v %v", resp, err)
	}
	// Nor is another organization using the same tenant and client ID
	// (issue 11 item 12h: one organization's junk secret or throttle
	// cannot stall another's checks).
	if resp, err := get(t, withCaller(withThrottleBudget(t.Context(), 100*time.Millisecond), "other-org", "tenant", "client"), hc, srv.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("same tenant and client ID, another organization: %v %v", resp, err)
	}
	// Within budget and deadline, the same caller waits the window out.
	ctx, cancel := context.WithTimeout(withCaller(t.Context(), "org", "tenant", "client"), 3*time.Second)
	defer cancel()
	if resp, err := get(t, ctx, hc, srv.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after waiting: %v %v", resp, err)
	}
	if gap := rec.times[len(rec.times)-1].Sub(rec.times[0]); gap < time.Second {
		t.Fatalf("came back after %v, inside Retry-After", gap)
	}
}

func TestTransientRetriesOnlyWhenReplayable(t *testing.T) {
	t.Parallel()
	rec := &recorder{script: []func(http.ResponseWriter){status(500), status(500)}}
	srv, hc := newTestTransport(t, rec)
	post := func(ctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`{"query":"print 1"}`))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if resp := post(t.Context()); resp.StatusCode != 500 || rec.count() != 1 {
		t.Fatalf("a plain POST was retried: %d, %d requests", resp.StatusCode, rec.count())
	}
	if resp := post(withRetry(t.Context(), Idempotent)); resp.StatusCode != 200 || rec.count() != 3 {
		t.Fatalf("idempotent POST: %d, %d requests", resp.StatusCode, rec.count())
	}
	if rec.bodies[2] != `{"query":"print 1"}` {
		t.Fatalf("retried body %q", rec.bodies[2])
	}
}

// TestCallerSlotsBoundAndPrune: a caller has at most n requests in flight
// per host; its slot stays between requests, and idle slots are dropped
// once the map is full.
func TestCallerSlotsBoundAndPrune(t *testing.T) {
	ctx := context.Background()
	c := newCallerSlots(1)
	rel, err := c.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.sem["a"]; len(s.ch) != cap(s.ch) {
		t.Fatal("the caller's slot is not full with its one request in flight")
	}
	relB, err := c.acquire(ctx, "b") // another caller does not wait
	if err != nil {
		t.Fatal(err)
	}
	relB()
	rel()
	if s := c.sem["a"]; len(s.ch) != 0 || s.refs != 0 {
		t.Fatalf("the caller's slot was not freed: %d in flight, %d refs", len(s.ch), s.refs)
	}
	if len(c.sem) != 2 {
		t.Fatalf("%d slots kept, want 2 (a and b, idle)", len(c.sem))
	}
	busy, err := c.acquire(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	for i := len(c.sem); i < callerSlotsPrune; i++ {
		r, err := c.acquire(ctx, "idle-"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	if _, err := c.acquire(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.sem["busy"]; !ok || len(c.sem) != 2 {
		t.Fatalf("after pruning: %d slots, busy kept %v; want busy and new", len(c.sem), ok)
	}
	busy()
}
