package microsoft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// retryTransport is the one place Microsoft calls are retried: every HTTP
// request of azidentity (its own retry policy is off), msgraph-sdk-go (its
// retry handler is removed) and the plain calls goes through it.
//
//   - 429, and 503 with Retry-After: wait at least what Microsoft asked
//     (retry-after-ms, x-ms-retry-after-ms, Retry-After seconds or date),
//     never less, then retry; the waits of one operation share a budget
//     (Config.MaxThrottleWait) and never run past the context's deadline.
//     A wait that does not fit is not started: the answer is returned as
//     is, and the caller classifies it as throttled.
//   - 500, 502, 503, 504 and network errors: a bounded number of retries
//     with jittered exponential backoff, for requests safe to repeat.
//
// Which request may be repeated at all is retryDecision's rule: every
// request declares (Retry) whether it is idempotent.
type retryTransport struct {
	next        http.RoundTripper
	gate        *throttleGate
	slots       *callerSlots
	meta        *metadataCache // nil: off
	maxWait     time.Duration
	maxRetries  int
	backoff     time.Duration
	retryMargin time.Duration // added to every Retry-After wait
	// timeout bounds each attempt: connecting, sending, the answer's
	// headers and reading its body (Config.HTTPTimeout); 0: none. Waits
	// between attempts (Retry-After, backoff) are outside it.
	timeout time.Duration
}

// errAttemptTimeout is the cause of an attempt's own deadline.
var errAttemptTimeout = errors.New("microsoft exchange timeout")

// attemptContext bounds one attempt of a request by t.timeout.
func (t *retryTransport) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, t.timeout, errAttemptTimeout)
}

// timedOut reports whether actx ended by the attempt's own deadline (not
// the caller's).
func timedOut(actx, parent context.Context) bool {
	return parent.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout)
}

// deadlineBody is an answer's body read under its attempt's deadline: a
// body that stalls ends in *mserr.TimeoutError; the deadline is released
// at EOF or Close.
type deadlineBody struct {
	io.ReadCloser
	actx, parent context.Context
	cancel       context.CancelFunc
	after        time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.cancel()
	case err != nil && timedOut(b.actx, b.parent):
		err = &mserr.TimeoutError{After: b.after, Sent: true}
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// throttleBudget is what remains of one operation's Retry-After budget.
type throttleBudget struct {
	mu        sync.Mutex
	remaining time.Duration
}

type budgetKey struct{}

// withThrottleBudget gives the calls made with ctx one shared budget.
func withThrottleBudget(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, budgetKey{}, &throttleBudget{remaining: d})
}

// take reserves d from the budget; false when it does not fit.
func (b *throttleBudget) take(d time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d > b.remaining {
		return false
	}
	b.remaining -= d
	return true
}

// defaultThrottleWait is waited on a 429 without Retry-After (doubling).
const defaultThrottleWait = time.Second

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.meta != nil && isMetadata(req) {
		if resp := t.meta.get(req); resp != nil {
			return resp, nil
		}
		resp, err := t.roundTrip(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			resp = t.meta.put(req, resp)
		}
		return resp, err
	}
	return t.roundTrip(req)
}

// maxRequestBody bounds a request body sent to Microsoft (JSON documents
// and token requests: a few KiB).
const maxRequestBody = 4 << 20

func (t *retryTransport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	budget, _ := ctx.Value(budgetKey{}).(*throttleBudget)
	if budget == nil {
		budget = &throttleBudget{remaining: t.maxWait}
	}
	if req.Body != nil && req.Body != http.NoBody {
		// Buffer the (small) body once and give every attempt a reader of
		// its own. Even when the caller set GetBody (azcore does), it
		// rewinds the one shared reader, which an earlier attempt's
		// HTTP/2 stream may still be writing from after RoundTrip
		// returned (net/http closes request bodies asynchronously): a
		// data race, and a retry could send a torn body.
		b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > maxRequestBody {
			return nil, fmt.Errorf("request body to %s is larger than %d bytes", req.URL.Host, maxRequestBody)
		}
		req = req.Clone(ctx)
		req.ContentLength = int64(len(b))
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	// One client-request-id for every attempt: what Microsoft support
	// asks for, recorded on the attempts' spans (tracing.go).
	req = withClientRequestID(req)
	gateKey := ""
	if who, _ := ctx.Value(callerKey{}).(string); who != "" {
		gateKey = req.URL.Host + "|" + who
	}
	idempotent := declaredIdempotent(req)
	transient, throttled := 0, 0
	for attempt := 0; ; attempt++ {
		release := func() {}
		if gateKey != "" {
			rel, err := t.admit(ctx, gateKey, budget)
			if err != nil {
				return nil, err
			}
			release = rel
		}
		r := req
		if attempt > 0 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					release()
					return nil, err
				}
				r.Body = body
			}
		}
		// Whether any of the request reached the wire: a failure before
		// that proves a non-idempotent request did not land. An idempotent
		// one is sent again either way (retryDecision), so it is taken as
		// sent without tracing its writes (a trace per request was about
		// 5 µs of a check's CPU; BenchmarkSweep, session 9).
		var wrote atomic.Bool
		actx := withAttempt(r.Context(), attempt)
		if idempotent {
			wrote.Store(true)
		} else {
			actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
				WroteHeaderField: func(string, []string) { wrote.Store(true) },
				WroteHeaders:     func() { wrote.Store(true) },
			})
		}
		actx, cancelAttempt := t.attemptContext(actx)
		resp, err := t.next.RoundTrip(r.WithContext(actx))
		if err != nil {
			if timedOut(actx, ctx) {
				// A stalled Microsoft: classified transient (mserr), and not
				// sent again at once (retryDecision).
				err = &mserr.TimeoutError{After: t.timeout, Sent: wrote.Load()}
			}
			cancelAttempt()
		} else {
			resp.Body = &deadlineBody{ReadCloser: resp.Body, actx: actx, parent: ctx, cancel: cancelAttempt, after: t.timeout}
		}
		var wait time.Duration
		isThrottle := err == nil && (resp.StatusCode == http.StatusTooManyRequests ||
			resp.StatusCode == http.StatusServiceUnavailable && hasRetryAfter(resp.Header))
		if isThrottle {
			wait = mserr.RetryAfter(resp.Header, time.Now())
			if wait <= 0 {
				wait = defaultThrottleWait << min(throttled, 5)
			}
			wait += t.retryMargin
			if gateKey != "" {
				// Before the next request of this caller may go out.
				t.gate.set(gateKey, time.Now().Add(wait))
			}
			if f, ok := ctx.Value(throttleObserverKey{}).(func(time.Time)); ok {
				f(time.Now().Add(wait))
			}
		}
		release()
		a := attemptOutcome{idempotent: idempotent, err: err, sent: wrote.Load()}
		if resp != nil {
			// Retry-After is read only where it decides something (three
			// header lookups per request were ~1% of a sweep's CPU).
			a.status = resp.StatusCode
			a.retryAfter = (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable) &&
				hasRetryAfter(resp.Header)
		}
		switch d := retryDecision(a); {
		case d == retryNo && err != nil:
			return nil, err
		case d == retryNo:
			return resp, nil
		case err != nil:
			if ctx.Err() != nil || transient >= t.maxRetries {
				return nil, err
			}
			transient++
			wait = t.backoffFor(transient)
		case d == retryAfterWait:
			if !fits(ctx, wait) || !budget.take(wait) {
				return resp, nil // the caller reports "throttled" with Retry-After
			}
			throttled++
		default: // retryBackoff
			if transient >= t.maxRetries {
				return resp, nil
			}
			transient++
			wait = t.backoffFor(transient)
			if !fits(ctx, wait) {
				return resp, nil
			}
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// attemptOutcome is what one attempt of a request came to.
type attemptOutcome struct {
	idempotent bool  // the request may be sent again blindly (see Retry)
	status     int   // the answer's status; 0 when none
	retryAfter bool  // the answer carries a Retry-After header
	err        error // no answer
	sent       bool  // some of the request reached the wire
}

// retryKind is how an attempt is followed up.
type retryKind int

const (
	retryNo        retryKind = iota // return the answer or the error
	retryAfterWait                  // wait at least Retry-After, then send again
	retryBackoff                    // jittered backoff, then send again (bounded)
)

// retryDecision is the retry rule of every Microsoft call:
//
//   - An idempotent request (Retry Idempotent) is sent again after a 429
//     or a 503 with Retry-After (waiting at least what Microsoft asked),
//     and after 500, 502, 503, 504 or a transport error (backoff).
//   - A non-idempotent request is sent again only when the failure proves
//     it did not land: a 429 (Graph, ARM and Entra refuse a throttled
//     request before processing it: "the request was not processed",
//     Microsoft Graph throttling guidance), or a transport error before
//     any of the request reached the wire (dial refused, DNS, TLS
//     handshake). A 5xx, a timeout or a connection lost after sending may
//     have landed: the error goes back to the caller, which re-reads before
//     deciding (Directory.AddPassword, CreateServicePrincipal, ...).
//   - An attempt that ran out of its own deadline (Config.HTTPTimeout,
//     --microsoft-timeout: *mserr.TimeoutError) is not sent again at once,
//     idempotent or not: Microsoft stalled, and each attempt would cost
//     the whole deadline again. The caller tries again later (an
//     operation step's retry, the next check); a non-idempotent write is
//     ambiguous as after any lost answer (re-read before it is resent).
//   - Anything else is final.
func retryDecision(a attemptOutcome) retryKind {
	if a.err != nil {
		var te *mserr.TimeoutError
		if errors.Is(a.err, context.Canceled) || errors.Is(a.err, context.DeadlineExceeded) || errors.As(a.err, &te) {
			return retryNo
		}
		if a.idempotent || !a.sent {
			return retryBackoff
		}
		return retryNo
	}
	switch {
	case a.status == http.StatusTooManyRequests:
		return retryAfterWait
	case !a.idempotent:
		return retryNo
	case a.status == http.StatusServiceUnavailable && a.retryAfter:
		return retryAfterWait
	case isTransientStatus(a.status):
		return retryBackoff
	}
	return retryNo
}

type throttleObserverKey struct{}

// WithThrottleObserver returns ctx carrying f: each time Microsoft answers
// a call made with ctx with 429 (or 503 + Retry-After), f learns until when
// it asked to be left alone. The job queue shares that with every replica
// (internal/jobs, Config.ObserveThrottle).
func WithThrottleObserver(ctx context.Context, f func(until time.Time)) context.Context {
	return context.WithValue(ctx, throttleObserverKey{}, f)
}

func hasRetryAfter(h http.Header) bool {
	return h.Get("Retry-After") != "" || h.Get("retry-after-ms") != "" || h.Get("x-ms-retry-after-ms") != ""
}

func isTransientStatus(s int) bool {
	switch s {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Retry is what a request declares about being sent more than once. Every
// call of this package declares it on the request's context (withRetry);
// an undeclared request is idempotent only when its method is safe (GET,
// HEAD, OPTIONS) or it is a token request.
type Retry int

const (
	// RetryUndeclared: decided by the method (see above).
	RetryUndeclared Retry = iota
	// Idempotent: sending it twice has the effect of sending it once: a
	// read, a PUT to a deterministic name, a DELETE, a PATCH that upserts
	// by a key, a Log Analytics query, a token request.
	Idempotent
	// NotIdempotent: a second copy may act twice (POST /applications
	// creates a second app, addPassword a second secret). Sent again only
	// when the failure proves it did not land (retryDecision).
	NotIdempotent
)

type retryKey struct{}

// withRetry declares how the requests made with ctx may be retried.
func withRetry(ctx context.Context, r Retry) context.Context {
	return context.WithValue(ctx, retryKey{}, r)
}

// declaredIdempotent reads req's declaration.
func declaredIdempotent(req *http.Request) bool {
	if isTokenRequest(req) {
		// client_credentials has no side effect: a second token is harmless.
		return true
	}
	switch r, _ := req.Context().Value(retryKey{}).(Retry); r {
	case Idempotent:
		return true
	case NotIdempotent:
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// isTokenRequest: POST {authority}/{tenant}/oauth2/v2.0/token (or v1's
// /oauth2/token), which azidentity sends from inside any call.
func isTokenRequest(req *http.Request) bool {
	p := req.URL.Path
	return req.Method == http.MethodPost && (strings.HasSuffix(p, "/oauth2/v2.0/token") || strings.HasSuffix(p, "/oauth2/token"))
}

func (t *retryTransport) backoffFor(n int) time.Duration {
	d := t.backoff << (n - 1)
	// ±50% jitter
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

// fits reports whether waiting d leaves the context's deadline ahead.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// admit lets one request of a caller go out: after any open Retry-After
// window (waited out, or a throttled error when it cannot be), and with at
// most maxInFlight of the caller's requests to the host in flight, so that
// a 429 is known before the caller's next request leaves. Otherwise
// requests already sent when Microsoft opened the window would arrive
// inside it.
func (t *retryTransport) admit(ctx context.Context, key string, budget *throttleBudget) (func(), error) {
	for {
		if err := t.gate.await(ctx, key, budget, t.retryMargin); err != nil {
			return nil, err
		}
		release, err := t.slots.acquire(ctx, key)
		if err != nil {
			return nil, err
		}
		if t.gate.remaining(key) <= 0 {
			return release, nil
		}
		release() // a window opened while we queued: wait it out first
	}
}

// callerSlots bounds the in-flight requests per host and caller. A
// caller's slot stays in the map between its requests (a check makes five
// one after the other: creating and deleting it each time was a channel
// and two map writes per request); idle ones are pruned once the map
// holds callerSlotsPrune of them.
type callerSlots struct {
	mu  sync.Mutex
	n   int
	sem map[string]*slot
}

type slot struct {
	ch   chan struct{}
	refs int // holders and waiters; 0: idle, may be pruned
}

// callerSlotsPrune is the map size at which idle slots are dropped.
const callerSlotsPrune = 4096

func newCallerSlots(n int) *callerSlots { return &callerSlots{n: n, sem: map[string]*slot{}} }

func (c *callerSlots) acquire(ctx context.Context, key string) (func(), error) {
	c.mu.Lock()
	s := c.sem[key]
	if s == nil {
		if len(c.sem) >= callerSlotsPrune {
			for k, v := range c.sem {
				if v.refs == 0 {
					delete(c.sem, k)
				}
			}
		}
		s = &slot{ch: make(chan struct{}, c.n)}
		c.sem[key] = s
	}
	s.refs++
	c.mu.Unlock()
	done := func() {
		c.mu.Lock()
		s.refs--
		c.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; done() }, nil // called once (admit, roundTrip)
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

type callerKey struct{}

// withCaller names who is calling (organization, tenant and client ID) so
// that a 429 for one caller holds back that caller's later requests to
// the same host, across operations and sessions, until Retry-After has
// passed. The organization is part of the name: two organizations that
// registered the same tenant and client ID (one of them perhaps with a
// junk secret, on purpose) never wait for each other.
func withCaller(ctx context.Context, org, tenant, clientID string) context.Context {
	return context.WithValue(ctx, callerKey{}, strings.ToLower(org+"|"+tenant+"|"+clientID))
}

// throttleGate remembers, per host and caller, until when Microsoft asked
// to be left alone.
type throttleGate struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func newThrottleGate() *throttleGate { return &throttleGate{until: map[string]time.Time{}} }

func (g *throttleGate) set(key string, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.until) > 4096 {
		now := time.Now()
		for k, u := range g.until {
			if !u.After(now) {
				delete(g.until, k)
			}
		}
	}
	if until.After(g.until[key]) {
		g.until[key] = until
	}
}

func (g *throttleGate) remaining(key string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.until[key]
	if !ok {
		return 0
	}
	d := time.Until(u)
	if d <= 0 {
		delete(g.until, key)
		return 0
	}
	return d
}

// await waits out an open Retry-After window for key, or returns a
// throttled *mserr.Error at once when the wait does not fit the budget or
// the context's deadline.
func (g *throttleGate) await(ctx context.Context, key string, budget *throttleBudget, margin time.Duration) error {
	d := g.remaining(key)
	if d <= 0 {
		return nil
	}
	d += margin
	if !fits(ctx, d) || !budget.take(d) {
		return &mserr.Error{Status: http.StatusTooManyRequests, Code: "TooManyRequests", Class: mserr.ClassThrottled,
			Message: "Microsoft throttled this caller; its Retry-After has not elapsed", RetryAfter: d,
			Remedy: "Microsoft is throttling requests for this tenant or app; dzconnect will check again later. Nothing to do unless it persists."}
	}
	return sleep(ctx, d)
}
