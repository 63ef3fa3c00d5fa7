package token

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

func testService(now *time.Time) *Service {
	s := NewService(Config{CacheSize: 3}, Deps{})
	s.SetClock(func() time.Time { return *now })
	return s
}

func TestLRUBounded(t *testing.T) {
	c := newLRU(2)
	k := func(i int) cacheKey { return cacheKey{api: API(rune('a' + i))} }
	c.put(k(0), entry{})
	c.put(k(1), entry{})
	c.get(k(0)) // k(1) is now the least recently used
	c.put(k(2), entry{})
	if c.len() != 2 {
		t.Fatalf("len %d", c.len())
	}
	if _, ok := c.get(k(1)); ok {
		t.Fatal("the least recently used entry was kept")
	}
	if _, ok := c.get(k(0)); !ok {
		t.Fatal("a recently used entry was evicted")
	}
}

func TestGetCachesRefreshesAndExpires(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := testService(&now)
	var fetches atomic.Int32
	fetch := func(context.Context) (Token, error) {
		n := fetches.Add(1)
		return Token{Value: "t" + string('0'+n), ExpiresOn: now.Add(time.Hour)}, nil
	}
	key := cacheKey{org: uuid.New(), integration: uuid.New(), api: "graph", credential: "c|1"}
	ctx := context.Background()

	tok, cached, err := s.get(ctx, key, fetch)
	if err != nil || cached || tok.Value != "t1" {
		t.Fatalf("first: %v %v %v", tok, cached, err)
	}
	now = now.Add(50 * time.Minute) // 10 minutes left: still fresh
	if tok, cached, _ = s.get(ctx, key, fetch); !cached || tok.Value != "t1" || fetches.Load() != 1 {
		t.Fatalf("fresh: %v %v, %d fetches", tok, cached, fetches.Load())
	}
	now = now.Add(6 * time.Minute) // under 5 minutes (and 10%) left: cached, refreshed behind
	if tok, cached, _ = s.get(ctx, key, fetch); !cached || tok.Value != "t1" {
		t.Fatalf("refresh window: %v %v", tok, cached)
	}
	waitFlight(t, s, key)
	if fetches.Load() != 2 {
		t.Fatalf("%d fetches after the refresh window, want 2", fetches.Load())
	}
	if tok, cached, _ = s.get(ctx, key, fetch); !cached || tok.Value != "t2" {
		t.Fatalf("after refresh: %v %v", tok, cached)
	}
	now = now.Add(2 * time.Hour) // expired: the caller waits for a new one
	if tok, cached, _ = s.get(ctx, key, fetch); cached || tok.Value != "t3" {
		t.Fatalf("expired: %v %v", tok, cached)
	}
	// Another credential fingerprint never sees the old token.
	other := key
	other.credential = "c|2"
	if tok, cached, _ = s.get(ctx, other, fetch); cached || tok.Value != "t4" {
		t.Fatalf("new credential: %v %v", tok, cached)
	}
}

// waitFlight waits until key has no fetch in flight (singleflight forgets
// a key when its call returns).
func waitFlight(t *testing.T, s *Service, key cacheKey) {
	t.Helper()
	r := <-s.flight.DoChan(key.String(), func() (any, error) { return nil, nil })
	_ = r // joins the in-flight refresh if any, else runs the no-op
}

func TestGetSingleFlight(t *testing.T) {
	now := time.Now()
	s := testService(&now)
	release, began := make(chan struct{}), make(chan struct{}, 1)
	var fetches atomic.Int32
	fetch := func(context.Context) (Token, error) {
		fetches.Add(1)
		began <- struct{}{}
		<-release
		return Token{Value: "v", ExpiresOn: now.Add(time.Hour)}, nil
	}
	key := cacheKey{api: "graph", credential: "x"}
	const n = 32
	var wg, started sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			tok, _, err := s.get(context.Background(), key, fetch)
			if err == nil {
				got[i] = tok.Value
			}
		}()
	}
	started.Wait()
	// Every caller is either waiting on the one flight or has not reached
	// it yet; releasing then lets the stragglers find the cache.
	<-began // the leader's fetch is running
	close(release)
	wg.Wait()
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches for %d concurrent callers", fetches.Load(), n)
	}
	for i, v := range got {
		if v != "v" {
			t.Fatalf("caller %d got %q", i, v)
		}
	}
}

func TestGetCallerCancelDoesNotFailOthers(t *testing.T) {
	now := time.Now()
	s := testService(&now)
	release := make(chan struct{})
	fetch := func(context.Context) (Token, error) {
		<-release
		return Token{Value: "v", ExpiresOn: now.Add(time.Hour)}, nil
	}
	key := cacheKey{api: "graph"}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := s.get(ctx, key, fetch); errc <- err }()
	done := make(chan string, 1)
	go func() {
		tok, _, _ := s.get(context.Background(), key, fetch)
		done <- tok.Value
	}()
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the canceled caller got no error")
	}
	close(release)
	if v := <-done; v != "v" {
		t.Fatalf("the other caller got %q", v)
	}
}

func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		err    error
		kind   apperr.Kind
		reason string
	}{
		{&mserr.Error{Service: "entra", Code: "AADSTS7000215", Class: mserr.ClassInvalidSecret, Message: "Invalid client secret provided.", Remedy: "Create a new secret."},
			apperr.FailedPrecondition, "MICROSOFT_INVALID_SECRET"},
		{&mserr.Error{Service: "entra", Code: "AADSTS700016", Class: mserr.ClassAppNotFound}, apperr.FailedPrecondition, "MICROSOFT_APP_NOT_FOUND"},
		{&mserr.Error{Service: "entra", Status: 429, Class: mserr.ClassThrottled, RetryAfter: 3 * time.Second}, apperr.Unavailable, "MICROSOFT_THROTTLED"},
		{&mserr.Error{Service: "entra", Status: 503, Class: mserr.ClassTransient}, apperr.Unavailable, "MICROSOFT_TRANSIENT"},
		{apperr.New(apperr.FailedPrecondition, "no secret").WithReason("SECRET_MISSING"), apperr.FailedPrecondition, "SECRET_MISSING"},
	} {
		e, ok := apperr.From(refusal(tc.err))
		if !ok || e.Kind != tc.kind || e.Reason != tc.reason {
			t.Errorf("refusal(%v) = %v", tc.err, e)
		}
	}
	e, _ := apperr.From(refusal(&mserr.Error{Status: 429, Class: mserr.ClassThrottled, RetryAfter: 3 * time.Second}))
	if e.Metadata["retry_after_seconds"] != "3" {
		t.Errorf("retry_after_seconds %v", e.Metadata)
	}
}

func TestTokenRedacted(t *testing.T) {
	tok := Token{Value: "eyJsecret.value.sig", ExpiresOn: time.Now()}
	for _, s := range []string{tok.String(), tok.GoString(), tok.LogValue().String()} {
		if strings.Contains(s, "eyJsecret") {
			t.Fatalf("token value in %q", s)
		}
	}
}
