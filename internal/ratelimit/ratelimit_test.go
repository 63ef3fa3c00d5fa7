package ratelimit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// fakeClock moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, cfg Config) (*Limiter, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// refused returns the refusal's scope and retry delay, failing unless err
// is a rate-limit refusal.
func refused(t *testing.T, err error) (Scope, time.Duration) {
	t.Helper()
	e, ok := apperr.From(err)
	if !ok || e.Kind != apperr.ResourceExhausted || e.Reason != Reason {
		t.Fatalf("want a RATE_LIMITED refusal, got %v", err)
	}
	return Scope(e.Metadata["scope"]), e.RetryDelay
}

func TestBucketRefillsOnTheClock(t *testing.T) {
	l, clk := newLimiter(t, Config{Key: Limit{RPS: 2, Burst: 3}})
	c := Caller{Org: uuid.New(), ID: "k1"}
	for i := range 3 {
		if err := l.Allow(context.Background(), c); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	scope, wait := refused(t, l.Allow(context.Background(), c))
	if scope != ScopeKey || wait != 500*time.Millisecond {
		t.Fatalf("refusal: scope %q wait %v, want key 500ms", scope, wait)
	}
	clk.Advance(250 * time.Millisecond) // half a token
	if _, wait := refused(t, l.Allow(context.Background(), c)); wait != 250*time.Millisecond {
		t.Fatalf("after 250ms: wait %v, want 250ms", wait)
	}
	clk.Advance(250 * time.Millisecond)
	if err := l.Allow(context.Background(), c); err != nil {
		t.Fatalf("after 500ms: %v", err)
	}
	refused(t, l.Allow(context.Background(), c))
	clk.Advance(time.Hour) // refills to the burst, not beyond
	for range 3 {
		if err := l.Allow(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, l.Allow(context.Background(), c))
}

func TestKeyAndOrganizationBuckets(t *testing.T) {
	l, clk := newLimiter(t, Config{Key: Limit{RPS: 1, Burst: 2}, Org: Limit{RPS: 1, Burst: 3}})
	orgA, orgB := uuid.New(), uuid.New()
	a1, a2, b1 := Caller{Org: orgA, ID: "a1"}, Caller{Org: orgA, ID: "a2"}, Caller{Org: orgB, ID: "b1"}
	ctx := context.Background()
	for range 2 {
		if err := l.Allow(ctx, a1); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := refused(t, l.Allow(ctx, a1)); s != ScopeKey {
		t.Fatalf("a1's third call: scope %q, want key", s)
	}
	// The refusal took no token from the organization: a2 gets its third.
	if err := l.Allow(ctx, a2); err != nil {
		t.Fatalf("a2: %v", err)
	}
	// A second key of the organization is limited by the organization's bucket.
	if s, _ := refused(t, l.Allow(ctx, a2)); s != ScopeOrganization {
		t.Fatalf("a2 past the organization's burst: scope %q, want organization", s)
	}
	// Another organization is unaffected.
	for range 2 {
		if err := l.Allow(ctx, b1); err != nil {
			t.Fatalf("org B: %v", err)
		}
	}
	clk.Advance(time.Second)
	if err := l.Allow(ctx, a2); err != nil {
		t.Fatalf("a2 a second later: %v", err)
	}
}

func TestOverridesAndOff(t *testing.T) {
	vip, off, plain := uuid.New(), uuid.New(), uuid.New()
	l, _ := newLimiter(t, Config{Org: Limit{RPS: 1, Burst: 1}, OrgOverrides: map[uuid.UUID]Limit{vip: {RPS: 10, Burst: 5}, off: {}}})
	ctx := context.Background()
	count := func(org uuid.UUID) int {
		n := 0
		for i := range 100 {
			if l.Allow(ctx, Caller{Org: org, ID: fmt.Sprint("k", i)}) == nil {
				n++
			}
		}
		return n
	}
	if n := count(plain); n != 1 {
		t.Errorf("default organization allowed %d, want 1", n)
	}
	if n := count(vip); n != 5 {
		t.Errorf("overridden organization allowed %d, want 5", n)
	}
	if n := count(off); n != 100 {
		t.Errorf("organization with an override of 0 allowed %d, want all 100", n)
	}
	if l, err := New(Config{}); l != nil || err != nil {
		t.Fatalf("nothing configured: %v %v, want a nil limiter", l, err)
	}
	var none *Limiter
	if err := none.Allow(ctx, Caller{Org: plain, ID: "x"}); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryBounded: buckets that refilled are dropped losslessly, and no
// number of callers grows a scope past MaxBuckets.
func TestMemoryBounded(t *testing.T) {
	l, clk := newLimiter(t, Config{Key: Limit{RPS: 10, Burst: 10}, Org: Limit{RPS: 100, Burst: 100}, MaxBuckets: 50})
	ctx := context.Background()
	org := uuid.New()
	for i := range 10000 {
		_ = l.Allow(ctx, Caller{Org: uuid.New(), ID: fmt.Sprint("caller-", i)})
	}
	if s := l.Stats(); s.KeyBuckets > 50 || s.OrgBuckets > 50 {
		t.Fatalf("10000 callers in 10000 organizations: %+v, want at most 50 of each", s)
	}
	// Idle buckets refill within a second (burst/rps) and then go as new
	// ones arrive, without counting as evictions.
	clk.Advance(2 * time.Second)
	before := l.Stats().Evicted
	for i := range 50 {
		_ = l.Allow(ctx, Caller{Org: org, ID: fmt.Sprint("later-", i)})
	}
	// (Every old bucket was full: the first new one of each scope dropped
	// them all; the 50 new callers share one organization.)
	if s := l.Stats(); s.Evicted != before || s.KeyBuckets != 50 || s.OrgBuckets != 1 {
		t.Fatalf("after refill: %+v (evicted before %d), want refilled buckets dropped losslessly", s, before)
	}
	// A dropped bucket comes back full, so dropping a refilled one loses
	// nothing: a caller spending its burst is still limited.
	c := Caller{Org: org, ID: "spender"}
	for range 10 {
		if err := l.Allow(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, l.Allow(ctx, c))
}

// TestRefusalsLoggedAggregated: a flood writes a bounded number of lines,
// each counting the refusals it stands for, and the metric counts all.
func TestRefusalsLoggedAggregated(t *testing.T) {
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	l, clk := newLimiter(t, Config{Key: Limit{RPS: 1, Burst: 1}, LogEvery: 10 * time.Second,
		Log: slog.New(slog.NewTextHandler(&buf, nil)), Metrics: reg})
	c := Caller{Org: uuid.New(), ID: "flooder"}
	ctx := context.Background()
	_ = l.Allow(ctx, c)
	for range 10000 {
		_ = l.Allow(ctx, c)
	}
	if n := strings.Count(buf.String(), "rate limited"); n != 1 {
		t.Fatalf("10000 refusals in an instant: %d log lines, want 1:\n%s", n, buf.String())
	}
	clk.Advance(11 * time.Second)
	_ = l.Allow(ctx, c) // a token again
	_ = l.Allow(ctx, c)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "refused=10000") {
		t.Fatalf("the second line should report the 9999 refusals not logged plus this one:\n%s", buf.String())
	}
	if got := counterValue(t, reg, "dzconnect_rate_limited_total", "key"); got != 10001 {
		t.Fatalf("dzconnect_rate_limited_total{scope=key} = %v, want 10001", got)
	}
	// Many callers flooding at once: the log's own budget bounds the lines.
	buf.Reset()
	for i := range 1000 {
		id := Caller{Org: c.Org, ID: fmt.Sprint("many-", i)}
		_ = l.Allow(ctx, id)
		_ = l.Allow(ctx, id)
	}
	if n := strings.Count(buf.String(), "rate limited"); n > 20 {
		t.Fatalf("1000 flooding callers: %d log lines, want at most the burst of 20", n)
	}
}

func TestConcurrentAllowNeverOvershoots(t *testing.T) {
	l, _ := newLimiter(t, Config{Key: Limit{RPS: 1, Burst: 100}, Org: Limit{RPS: 1, Burst: 150}})
	org := uuid.New()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("k", g%2)
			for range 200 {
				if l.Allow(context.Background(), Caller{Org: org, ID: id}) == nil {
					mu.Lock()
					allowed[id]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed["k0"] > 100 || allowed["k1"] > 100 || allowed["k0"]+allowed["k1"] != 150 {
		t.Fatalf("allowed %v: want each key at most 100, together exactly the organization's 150", allowed)
	}
}

// TestPrecheck: a credential whose caller is out of tokens is refused
// before authentication, without taking a token; unknown credentials and
// callers with tokens pass; the credentials remembered stay bounded.
func TestPrecheck(t *testing.T) {
	l, clk := newLimiter(t, Config{Key: Limit{RPS: 1, Burst: 1}, Org: Limit{RPS: 1, Burst: 2}, MaxBuckets: 10})
	ctx := context.Background()
	org := uuid.New()
	k1 := Caller{Org: org, ID: "k1", Cred: CredentialOf("Bearer dzk_one")}
	k2 := Caller{Org: org, ID: "k2", Cred: CredentialOf("Bearer dzk_two")}
	if err := l.Precheck(ctx, k1.Cred); err != nil {
		t.Fatalf("unknown credential: %v", err)
	}
	if err := l.Allow(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if s, _ := refused(t, l.Precheck(ctx, k1.Cred)); s != ScopeKey {
		t.Fatalf("k1 out of tokens: scope %q", s)
	}
	if err := l.Precheck(ctx, k2.Cred); err != nil {
		t.Fatalf("k2, never seen: %v", err)
	}
	if err := l.Allow(ctx, k2); err != nil {
		t.Fatal(err)
	}
	// The organization's 2 are spent: k2 is refused for it... after a
	// second k1 and k2 have a token again, and so has the organization.
	refused(t, l.Precheck(ctx, k2.Cred))
	clk.Advance(time.Second)
	if err := l.Precheck(ctx, k1.Cred); err != nil {
		t.Fatalf("k1 a second later: %v", err)
	}
	if err := l.Precheck(ctx, k1.Cred); err != nil {
		t.Fatalf("Precheck took a token: %v", err)
	}
	if err := l.Allow(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if s, _ := refused(t, l.Precheck(ctx, k2.Cred)); s != ScopeOrganization {
		t.Fatalf("k2 with its own token but none left for the organization: scope %q", s)
	}
	for i := range 100 {
		_ = l.Allow(ctx, Caller{Org: uuid.New(), ID: fmt.Sprint("c", i), Cred: CredentialOf(fmt.Sprint("Bearer ", i))})
	}
	l.mu.Lock()
	n := len(l.creds)
	l.mu.Unlock()
	if n > 10 {
		t.Fatalf("%d credentials remembered, want at most MaxBuckets (10)", n)
	}
}

// counterValue reads a counter of reg with label scope.
func counterValue(t *testing.T, reg *prometheus.Registry, name, scope string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "scope" && lp.GetValue() == scope {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{scope=%q}", name, scope)
	return 0
}

// TestRefusalsHeld: a caller refused more times within a second than its
// burst (at least minHoldAfter) has its further refusals held; a second
// without a refusal ends that; at most MaxHeld holds start per Hold.
func TestRefusalsHeld(t *testing.T) {
	org := uuid.New()
	c := Caller{Org: org, ID: "apiKeys/flood", Cred: CredentialOf("Bearer flood")}
	l, clk := newLimiter(t, Config{Key: Limit{RPS: 1, Burst: 5}, Hold: time.Second, MaxHeld: 3})
	for range 5 {
		if err := l.Allow(context.Background(), c); err != nil {
			t.Fatalf("burst: %v", err)
		}
	}
	// minHoldAfter refusals within the second are answered at once.
	for i := range minHoldAfter {
		err := l.Allow(context.Background(), c)
		if refused(t, err); HoldOf(err) != 0 {
			t.Fatalf("refusal %d held before the threshold", i+1)
		}
		clk.Advance(10 * time.Millisecond)
	}
	// The next ones are held, through Precheck too, while the budget lasts
	// (3 per second here); the rest are answered at once.
	var held []error
	for range 5 {
		err := l.Precheck(context.Background(), c.Cred)
		if refused(t, err); HoldOf(err) > 0 {
			held = append(held, err)
		}
	}
	if len(held) != 3 {
		t.Fatalf("held %d refusals, want 3 (MaxHeld per Hold)", len(held))
	}
	for _, err := range held {
		e, _ := apperr.From(err)
		d, perr := time.ParseDuration(e.Metadata["held"])
		if perr != nil || d != HoldOf(err) || d < 500*time.Millisecond || d >= 1500*time.Millisecond ||
			!strings.Contains(e.Message, "answer held "+d.String()) || e.RetryDelay != max(800*time.Millisecond-d, time.Millisecond) {
			// (a token is 0.8 s away: the retry delay counts from the answer)
			t.Fatalf("held refusal: %q %v retry %v hold %v; want a hold of 0.5 to 1.5 s, named", e.Message, e.Metadata, e.RetryDelay, HoldOf(err))
		}
	}
	// The budget refills with time; the caller stays held while it keeps
	// being refused (a refusal 0.9 s after the last one).
	clk.Advance(900 * time.Millisecond)
	_ = l.Allow(context.Background(), c) // the token earned meanwhile
	if err := l.Allow(context.Background(), c); HoldOf(err) == 0 {
		t.Fatalf("refusal after 0.9 s not held: %v", err)
	}
	// A whole second without a refusal ends it (a client that waited),
	// counted from the held answer (up to 1.5 s after that refusal).
	clk.Advance(1500 * time.Millisecond)
	if err := l.Allow(context.Background(), c); err != nil {
		t.Fatal(err) // a token earned meanwhile
	}
	if err := l.Allow(context.Background(), c); HoldOf(err) == 0 {
		t.Fatalf("refused 1.5 s after a held refusal (at most 1 s after its answer): not held: %v", err)
	}
	clk.Advance(2600 * time.Millisecond)
	var err error
	for range 10 { // the tokens earned meanwhile, then the first refusal
		if err = l.Allow(context.Background(), c); err != nil {
			break
		}
	}
	if refused(t, err); HoldOf(err) != 0 {
		t.Fatalf("first refusal after a quiet second held: %v", err)
	}
	// Hold 0 (the flag off) never holds.
	l2, _ := newLimiter(t, Config{Key: Limit{RPS: 1, Burst: 1}})
	for range 100 {
		if err := l2.Allow(context.Background(), c); HoldOf(err) != 0 {
			t.Fatal("held without Hold")
		}
	}
}

// TestWaitHolds: Wait returns after the hold, or when the context ends.
func TestWaitHolds(t *testing.T) {
	err := &heldError{error: refusal(ScopeKey, Limit{RPS: 1, Burst: 1}, time.Second, 50*time.Millisecond), hold: 50 * time.Millisecond}
	start := time.Now()
	Wait(context.Background(), err)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("Wait returned after %v, before the 50ms hold", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := &heldError{error: err.error, hold: time.Hour}
	Wait(ctx, long) // returns at once: the context is done
	Wait(context.Background(), refusal(ScopeKey, Limit{RPS: 1, Burst: 1}, time.Second, 0))
}
