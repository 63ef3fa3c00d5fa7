// Package ratelimit limits the request rate of API callers (issue 11
// item 4): one token bucket per caller (an API key, an OIDC subject, a
// client-certificate identity) and one per organization, both taken from
// for every authenticated call, or neither. A refusal is ResourceExhausted
// with reason RATE_LIMITED, the scope (key or organization) and the limit
// in its metadata, and when a token will be there as its RetryDelay
// (google.rpc.RetryInfo; REST: 429 with Retry-After).
//
// State is per replica: N replicas behind a load balancer allow up to N
// times the configured rates (docs/limits.md). Memory is bounded: a
// bucket that has refilled to its burst is dropped (a new one starts
// full, so nothing is lost), and each scope holds at most MaxBuckets
// buckets, the least recently used dropped first beyond that.
//
// A caller that keeps calling while refused (more refusals within a
// second than its bucket's burst) has its refusals held: answered after
// about Config.Hold (half to one and a half times) instead of at once
// (HoldOf, Wait), so a client retrying in a
// loop without honouring the retry delay slows to its own concurrency per
// Hold instead of taking the CPU other callers need. At most MaxHeld
// refusals start a hold per Hold; beyond that they are answered at once.
//
// Refusals are cheap (a map lookup under a mutex; nothing in Postgres or
// Vault). A caller already out of tokens is refused before its credential
// is even looked up (Precheck, by the credential's hash, which Allow
// remembers). Refusals are logged aggregated: at most one line per bucket per
// LogEvery, carrying the number of refusals since the previous one, and at
// most a few lines per second in all.
package ratelimit

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// Scope is what a bucket limits.
type Scope string

// The scopes.
const (
	ScopeKey          Scope = "key" // one caller: an API key or a workload identity
	ScopeOrganization Scope = "organization"
)

// Reason is the google.rpc.ErrorInfo reason of a refusal.
const Reason = "RATE_LIMITED"

// DefaultMaxBuckets bounds each scope's buckets when Config.MaxBuckets is 0.
const DefaultMaxBuckets = 100000

// DefaultMaxHeld bounds the held refusals when Config.MaxHeld is 0.
const DefaultMaxHeld = 1000

// Config tunes a Limiter.
type Config struct {
	Key Limit // per caller
	Org Limit // per organization
	// OrgOverrides replace Org for the organizations they name.
	OrgOverrides map[uuid.UUID]Limit
	// MaxBuckets bounds the buckets of each scope (default DefaultMaxBuckets).
	MaxBuckets int
	// LogEvery: at most one log line per bucket this often (default 10s).
	LogEvery time.Duration
	// Hold delays the answer to a refusal of a caller that keeps calling
	// while refused, by half to one and a half times Hold, at random (0:
	// every refusal is answered at once).
	Hold time.Duration
	// MaxHeld bounds the refusals held at once, about: at most MaxHeld
	// holds start per Hold (default DefaultMaxHeld).
	MaxHeld int
	Log     *slog.Logger // nil: refusals are not logged
	// Metrics registers dzconnect_rate_limited_total{scope} and
	// dzconnect_rate_limit_buckets{scope} (nil: not registered).
	Metrics prometheus.Registerer
	Now     func() time.Time // nil: time.Now
}

// Caller is who a call is counted for.
type Caller struct {
	Org uuid.UUID
	// ID names the caller stably across calls: the API key's resource
	// name, oidc:<issuer>#<subject>, cert:<identity> (auth.Principal.Actor).
	ID string
	// Cred is the credential the caller presented (CredentialOf; zero:
	// none, e.g. a client certificate). Allow remembers which caller it
	// belongs to, so that Precheck can refuse the next call of an
	// exhausted caller before its credential is looked up.
	Cred Credential
}

// Credential is a presented credential's SHA-256 (never the credential).
type Credential [sha256.Size]byte

// CredentialOf hashes an authorization header's value.
func CredentialOf(header string) Credential { return sha256.Sum256([]byte(header)) }

// credEntry maps a credential Allow has seen to its caller's buckets.
type credEntry struct {
	cred       Credential
	keyID, org string
	elem       *list.Element
}

// Limiter applies Config. A nil *Limiter allows everything.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	keys    *table
	orgs    *table
	logRate *bucket // the log lines' own budget
	holds   *bucket // the holds' budget: MaxHeld per Hold
	creds   map[Credential]*credEntry
	credLRU *list.List // most recently allowed at the front; at most MaxBuckets

	refused *prometheus.CounterVec
	held    prometheus.Counter
}

// New returns a Limiter, or nil when cfg limits nothing.
func New(cfg Config) (*Limiter, error) {
	if cfg.Key.Off() && cfg.Org.Off() && len(cfg.OrgOverrides) == 0 {
		return nil, nil
	}
	if cfg.MaxBuckets <= 0 {
		cfg.MaxBuckets = DefaultMaxBuckets
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10 * time.Second
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = DefaultMaxHeld
	}
	cfg.Key, cfg.Org = cfg.Key.normalized(), cfg.Org.normalized()
	overrides := make(map[uuid.UUID]Limit, len(cfg.OrgOverrides))
	for org, l := range cfg.OrgOverrides {
		overrides[org] = l.normalized()
	}
	cfg.OrgOverrides = overrides
	l := &Limiter{cfg: cfg, now: cfg.Now, keys: newTable(cfg.MaxBuckets), orgs: newTable(cfg.MaxBuckets),
		creds: map[Credential]*credEntry{}, credLRU: list.New()}
	if l.now == nil {
		l.now = time.Now
	}
	l.logRate = &bucket{limit: Limit{RPS: 5, Burst: 20}, tokens: 20, last: l.now()}
	if cfg.Hold > 0 {
		l.holds = &bucket{limit: Limit{RPS: float64(cfg.MaxHeld) / cfg.Hold.Seconds(), Burst: cfg.MaxHeld},
			tokens: float64(cfg.MaxHeld), last: l.now()}
	}
	l.held = prometheus.NewCounter(prometheus.CounterOpts{Name: "dzconnect_rate_limit_held_total",
		Help: "Refusals answered after --rate-limit-hold because their caller kept calling while refused."})
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dzconnect_rate_limited_total",
		Help: "Calls refused by a request rate limit (RESOURCE_EXHAUSTED, RATE_LIMITED), by the scope whose bucket was empty."}, []string{"scope"})
	for _, s := range []Scope{ScopeKey, ScopeOrganization} {
		l.refused.WithLabelValues(string(s))
	}
	if cfg.Metrics != nil {
		buckets := func(t *table) func() float64 {
			return func() float64 {
				l.mu.Lock()
				defer l.mu.Unlock()
				return float64(t.len())
			}
		}
		for _, c := range []prometheus.Collector{l.refused, l.held,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dzconnect_rate_limit_buckets", Help: "Token buckets held in memory (per replica).",
				ConstLabels: prometheus.Labels{"scope": string(ScopeKey)}}, buckets(l.keys)),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dzconnect_rate_limit_buckets", Help: "Token buckets held in memory (per replica).",
				ConstLabels: prometheus.Labels{"scope": string(ScopeOrganization)}}, buckets(l.orgs)),
		} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("registering rate limit metrics: %w", err)
			}
		}
	}
	return l, nil
}

// orgLimit is org's limit: its override, else the default.
func (l *Limiter) orgLimit(org uuid.UUID) Limit {
	if o, ok := l.cfg.OrgOverrides[org]; ok {
		return o
	}
	return l.cfg.Org
}

// Allow takes a token from c's bucket and from its organization's, or
// from neither: it refuses with ResourceExhausted (RATE_LIMITED) when
// either is empty, naming the scope whose bucket is empty (the caller's
// first) and when a token will be there.
func (l *Limiter) Allow(ctx context.Context, c Caller) error {
	if l == nil {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	var kb, ob *bucket
	if !l.cfg.Key.Off() && c.ID != "" {
		kb = l.keys.get(c.ID, l.cfg.Key, now)
		kb.refill(now)
	}
	if ol := l.orgLimit(c.Org); !ol.Off() && c.Org != uuid.Nil {
		ob = l.orgs.get(c.Org.String(), ol, now)
		ob.refill(now)
	}
	if c.Cred != (Credential{}) {
		l.rememberLocked(c)
	}
	empty, scope := emptyOf(kb, ob)
	if empty == nil {
		if kb != nil {
			kb.tokens--
		}
		if ob != nil {
			ob.tokens--
		}
		l.mu.Unlock()
		return nil
	}
	return l.refuseLocked(ctx, empty, scope, c.ID, c.Org.String(), now)
}

// Precheck refuses, as Allow would, a call presenting a credential whose
// caller Allow has seen and whose bucket (or organization's) is empty
// now, without taking a token. It lets a refusal skip the credential's
// lookup (a Postgres query for an API key, a signature check for a JWT);
// a credential never seen, or whose buckets hold a token, passes (Allow
// decides after authentication).
func (l *Limiter) Precheck(ctx context.Context, cred Credential) error {
	if l == nil || cred == (Credential{}) {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	e := l.creds[cred]
	if e == nil {
		l.mu.Unlock()
		return nil
	}
	kb, ob := l.keys.m[e.keyID], l.orgs.m[e.org]
	if kb != nil {
		kb.refill(now)
	}
	if ob != nil {
		ob.refill(now)
	}
	empty, scope := emptyOf(kb, ob)
	if empty == nil {
		l.mu.Unlock()
		return nil
	}
	return l.refuseLocked(ctx, empty, scope, e.keyID, e.org, now)
}

// emptyOf returns the first of the caller's and the organization's
// buckets (either may be nil) without a token.
func emptyOf(kb, ob *bucket) (*bucket, Scope) {
	switch {
	case kb != nil && kb.tokens < 1:
		return kb, ScopeKey
	case ob != nil && ob.tokens < 1:
		return ob, ScopeOrganization
	}
	return nil, ""
}

// refuseLocked counts and (sampled) logs a refusal by b, decides whether
// its answer is held, unlocks the limiter and returns the caller's error.
func (l *Limiter) refuseLocked(ctx context.Context, b *bucket, scope Scope, caller, org string, now time.Time) error {
	wait := b.wait()
	lim := b.limit
	logged := l.sampleLocked(b, now)
	var hold time.Duration
	holding := b.noteRefusal(now)
	if holding && l.holds != nil {
		if l.holds.refill(now); l.holds.tokens >= 1 {
			l.holds.tokens--
			// Spread over half to one and a half times Hold, so that a
			// client's held calls do not all come back at once.
			hold = (l.cfg.Hold/2 + rand.N(l.cfg.Hold)).Round(time.Millisecond)
			b.heldUntil(now.Add(hold))
		}
	}
	l.mu.Unlock()

	l.refused.WithLabelValues(string(scope)).Inc()
	if logged > 0 && l.cfg.Log != nil {
		l.cfg.Log.WarnContext(ctx, "rate limited", "scope", string(scope), "caller", caller, "organization", org,
			"refused", logged, "limit_rps", lim.RPS, "burst", lim.Burst, "holding", holding)
	}
	if hold > 0 {
		l.held.Inc()
		return &heldError{error: refusal(scope, lim, wait, hold), hold: hold}
	}
	return refusal(scope, lim, wait, 0)
}

// heldError is a refusal whose answer is to be held (HoldOf).
type heldError struct {
	error
	hold time.Duration
}

func (e *heldError) Unwrap() error { return e.error }

// HoldOf returns how long the answer to a refusal from Allow or Precheck
// is to be held (0: answer at once). The caller's transport holds it
// (Wait), or answers at once where holding would delay other callers
// (a connection shared by many callers).
func HoldOf(err error) time.Duration {
	var h *heldError
	if errors.As(err, &h) {
		return h.hold
	}
	return 0
}

// Wait holds err's answer for HoldOf(err), or until ctx is done.
func Wait(ctx context.Context, err error) {
	d := HoldOf(err)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// rememberLocked maps c's credential to its buckets, keeping at most
// MaxBuckets credentials (the least recently allowed dropped first).
func (l *Limiter) rememberLocked(c Caller) {
	if e, ok := l.creds[c.Cred]; ok {
		l.credLRU.MoveToFront(e.elem)
		return
	}
	e := &credEntry{cred: c.Cred, keyID: c.ID, org: c.Org.String()}
	e.elem = l.credLRU.PushFront(e)
	l.creds[c.Cred] = e
	for len(l.creds) > l.cfg.MaxBuckets {
		old := l.credLRU.Back()
		l.credLRU.Remove(old)
		delete(l.creds, old.Value.(*credEntry).cred)
	}
}

// sampleLocked counts a refusal of b and returns how many refusals to
// report in a log line now (0: none now; they are reported later).
func (l *Limiter) sampleLocked(b *bucket, now time.Time) int64 {
	b.unlogged++
	if !b.loggedAt.IsZero() && now.Sub(b.loggedAt) < l.cfg.LogEvery {
		return 0
	}
	l.logRate.refill(now)
	if l.logRate.tokens < 1 {
		return 0
	}
	l.logRate.tokens--
	n := b.unlogged
	b.unlogged, b.loggedAt = 0, now
	return n
}

// refusal is the caller's error: RATE_LIMITED with the scope and the
// limit, and the wait as RetryInfo (at least a millisecond). A held
// refusal says so (metadata "held") and its wait counts from its answer.
func refusal(scope Scope, lim Limit, wait, hold time.Duration) error {
	wait = max(wait-hold, time.Millisecond)
	what := map[Scope]string{ScopeKey: "this caller (API key or workload identity)", ScopeOrganization: "the organization"}[scope]
	rps := strconv.FormatFloat(lim.RPS, 'g', -1, 64)
	msg := fmt.Sprintf("rate limit exceeded: %s may make %s requests per second (bursts of %d); retry after %s",
		what, rps, lim.Burst, wait.Round(time.Millisecond))
	if hold > 0 {
		msg += fmt.Sprintf(" (answer held %s: this caller kept calling while refused; wait the retry delay before calling again)", hold)
	}
	e := apperr.New(apperr.ResourceExhausted, "%s", msg).
		WithReason(Reason).
		WithMetadata("scope", string(scope)).
		WithMetadata("limit", rps).
		WithMetadata("burst", strconv.Itoa(lim.Burst)).
		WithRetryDelay(wait)
	if hold > 0 {
		e = e.WithMetadata("held", hold.String())
	}
	return e
}

// Stats is what a Limiter holds (tests, metrics).
type Stats struct {
	KeyBuckets, OrgBuckets int
	// Evicted counts buckets dropped over MaxBuckets before they refilled.
	Evicted int64
}

// Stats returns the current counts.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{KeyBuckets: l.keys.len(), OrgBuckets: l.orgs.len(), Evicted: l.keys.evicted + l.orgs.evicted}
}
