package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// Config tunes the service; zero values take the defaults.
type Config struct {
	// CacheSize bounds the cached tokens (default 10000).
	CacheSize int
	// RefreshBefore: a token is refreshed when less than this remains
	// (default 5 minutes), or less than RefreshFraction of its lifetime.
	RefreshBefore   time.Duration
	RefreshFraction float64 // default 0.1
	// FetchTimeout bounds one token request (default 30s).
	FetchTimeout time.Duration
	// FlushInterval: how often Run writes the issuance counters (default 30s).
	FlushInterval time.Duration
	// AnnounceMargin: how long before a retiring credential's removal a
	// consumer still on it is announced (default 24h).
	AnnounceMargin time.Duration
	// AnnounceInterval: how often the leader looks for consumers to
	// announce (default 15s).
	AnnounceInterval time.Duration
}

func (c *Config) defaults() {
	if c.CacheSize <= 0 {
		c.CacheSize = 10000
	}
	if c.RefreshBefore <= 0 {
		c.RefreshBefore = 5 * time.Minute
	}
	if c.RefreshFraction <= 0 {
		c.RefreshFraction = 0.1
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 30 * time.Second
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 30 * time.Second
	}
	if c.AnnounceMargin <= 0 {
		c.AnnounceMargin = 24 * time.Hour
	}
	if c.AnnounceInterval <= 0 {
		c.AnnounceInterval = 15 * time.Second
	}
}

// Deps are what the service needs.
type Deps struct {
	Tx       uow.Runner
	Store    Store
	Sessions Sessions
	Retirer  Retirer
	Notifier event.Notifier
	Audit    audit.Appender
	Metrics  prometheus.Registerer // may be nil
	Log      *slog.Logger
}

// Service issues tokens and records consumers.
type Service struct {
	cfg      Config
	tx       uow.Runner
	store    Store
	sessions Sessions
	retirer  Retirer
	notify   event.Notifier
	audit    audit.Appender
	log      *slog.Logger
	now      func() time.Time

	cache  *lru
	flight singleflight.Group

	countMu sync.Mutex
	counts  map[countKey]*IssuanceCount

	issued  *prometheus.CounterVec
	stale   prometheus.Counter
	fetches prometheus.Histogram
}

// NewService returns a Service.
func NewService(cfg Config, d Deps) *Service {
	cfg.defaults()
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, tx: d.Tx, store: d.Store, sessions: d.Sessions, retirer: d.Retirer, notify: d.Notifier, audit: d.Audit,
		log: log, now: time.Now, cache: newLRU(cfg.CacheSize), counts: map[countKey]*IssuanceCount{}}
	s.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dzconnect_access_tokens_issued_total",
		Help: "Access tokens handed out by IssueAccessToken, by API and source (cache: from the cache; microsoft: the call waited for a token request, which concurrent calls share; error: refused).",
	}, []string{"api", "source"})
	s.stale = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dzconnect_credential_consumers_stale_total",
		Help: "Consumers announced (credential.consumer_stale) as still on a rotated-out credential shortly before its removal.",
	})
	s.fetches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "dzconnect_access_token_fetch_seconds", Help: "Duration of token requests to Microsoft made by IssueAccessToken.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	})
	if d.Metrics != nil {
		d.Metrics.MustRegister(s.issued, s.stale, s.fetches)
	}
	return s
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// APIs returns the APIs an integration of kind with features calls: the
// ones IssueAccessToken issues tokens for.
func APIs(kind integration.Kind, features []integration.Feature) []API {
	return verify.APIsFor(kind, features)
}

// Issue returns an access token for one of the integration's APIs, from
// the cache when it holds a fresh one for the active credential.
func (s *Service) Issue(ctx context.Context, org, id uuid.UUID, api API) (Issued, error) {
	// The narrow read answers a cached token; a fetch reads the whole
	// target (tenant, credential) it needs to open a session.
	in, err := s.store.LoadTokenTarget(ctx, s.tx.Conn(), org, id)
	if err != nil {
		return Issued{}, err
	}
	if in.State == integration.StateDeprovisioning {
		return Issued{}, apperr.New(apperr.FailedPrecondition, "the integration is being deprovisioned: no tokens are issued for it").
			WithReason("DEPROVISIONING")
	}
	apis := APIs(in.Kind, in.Features)
	if !slices.Contains(apis, api) {
		names := make([]string, len(apis))
		for i, a := range apis {
			names[i] = string(a)
		}
		return Issued{}, apperr.Invalid("api", "%s is not an API of this integration (it uses %s)", api, strings.Join(names, ", "))
	}
	fp, credID, ok := s.fingerprint(ctx, in)
	if !ok {
		return Issued{}, apperr.New(apperr.FailedPrecondition, "the integration has no active credential to get a token with").
			WithReason("NO_ACTIVE_CREDENTIAL")
	}
	key := cacheKey{org: org, integration: id, api: api, credential: fp}
	caller := ctx // the principal the fetch is counted for (the flight's leader)
	tok, cached, err := s.get(ctx, key, func(ctx context.Context) (Token, error) {
		full, t, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), org, id)
		if err != nil {
			return Token{}, err
		}
		if fp2, _, ok := s.fingerprint(ctx, full); !ok || fp2 != fp {
			// The credential changed between the two reads: this key's
			// token must not come from another credential.
			return Token{}, apperr.New(apperr.Aborted, "the integration's credential changed while its token was requested; retry").
				WithReason("CREDENTIAL_CHANGED")
		}
		src, err := s.sessions.Open(ctx, t, full)
		if err != nil {
			return Token{}, err
		}
		tok, err := src.AccessToken(ctx, api)
		if err == nil {
			s.count(caller, org, t.ID, id, api, 0, 1)
		}
		return tok, err
	})
	if err != nil {
		s.issued.WithLabelValues(string(api), "error").Inc()
		return Issued{}, refusal(err)
	}
	source := "microsoft"
	if cached {
		source = "cache"
	}
	s.issued.WithLabelValues(string(api), source).Inc()
	s.count(ctx, org, in.Tenant, id, api, 1, 0)
	return Issued{Token: tok, API: api, Credential: credID, Cached: cached}, nil
}

// get returns key's token: a fresh cached one as is (starting one
// background refresh when it nears expiry), otherwise the result of the
// key's one fetch in flight, which this call starts or joins.
func (s *Service) get(ctx context.Context, key cacheKey, fetch func(context.Context) (Token, error)) (Token, bool, error) {
	now := s.now()
	if e, ok := s.cache.get(key); ok && now.Before(e.tok.ExpiresOn.Add(-time.Second)) {
		if !now.Before(e.refreshAt) {
			s.flight.DoChan(key.String(), func() (any, error) { return s.fetch(key, fetch) }) // background refresh
		}
		return e.tok, true, nil
	}
	ch := s.flight.DoChan(key.String(), func() (any, error) {
		// A flight that ended between this caller's cache miss and its
		// DoChan has cached its token: use it, not a second request.
		if e, ok := s.cache.get(key); ok && s.now().Before(e.tok.ExpiresOn.Add(-time.Second)) {
			return e.tok, nil
		}
		return s.fetch(key, fetch)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, false, r.Err
		}
		// Callers that joined the flight got the token it fetched: one
		// request to Microsoft for all of them.
		return r.Val.(Token), false, nil
	case <-ctx.Done():
		return Token{}, false, ctx.Err()
	}
}

// fetch requests a token, detached from the caller that started it (the
// others waiting on it must not see that caller's cancellation), and
// caches it.
func (s *Service) fetch(key cacheKey, fetch func(context.Context) (Token, error)) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.FetchTimeout)
	defer cancel()
	start := time.Now()
	tok, err := fetch(ctx)
	s.fetches.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	now := s.now()
	life := tok.ExpiresOn.Sub(now)
	margin := min(s.cfg.RefreshBefore, time.Duration(float64(life)*s.cfg.RefreshFraction))
	s.cache.put(key, entry{tok: tok, refreshAt: tok.ExpiresOn.Add(-margin)})
	return tok, nil
}

// refusal turns a failed token request into the caller's error: Microsoft's
// classified refusal with its remedy, never the credential.
func refusal(err error) error {
	if _, ok := apperr.From(err); ok {
		return err
	}
	var me *mserr.Error
	if !errors.As(err, &me) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return apperr.New(apperr.Unavailable, "no token from Microsoft: the request failed").WithReason("MICROSOFT_UNAVAILABLE")
	}
	msg := fmt.Sprintf("Microsoft refused the token request: %s (%s)", me.Code, me.Message)
	if me.Remedy != "" {
		msg += ". " + me.Remedy
	}
	md := map[string]string{"code": me.Code, "class": string(me.Class)}
	if me.Remedy != "" {
		md["remedy"] = me.Remedy
	}
	reason := "MICROSOFT_" + strings.ToUpper(strings.ReplaceAll(string(me.Class), "-", "_"))
	kind := apperr.FailedPrecondition
	switch me.Class {
	case mserr.ClassThrottled, mserr.ClassTransient, mserr.ClassUnknown:
		kind = apperr.Unavailable
		if me.RetryAfter > 0 {
			md["retry_after_seconds"] = strconv.Itoa(int(me.RetryAfter.Round(time.Second) / time.Second))
		}
	}
	e := apperr.New(kind, "%s", msg).WithReason(reason)
	for k, v := range md {
		e = e.WithMetadata(k, v)
	}
	return e
}

// countKey is one issuance counter.
type countKey struct {
	org, key, integration uuid.UUID
	subject               string    // a workload identity (then key is nil)
	tenant                uuid.UUID // for the audit event's resource name
	api                   API
	window                time.Time
}

// count adds issuances and token requests to the caller's hourly counter:
// its API key's, its workload identity's (an OIDC subject, a certificate
// identity: each its own counter, as each has its own rate limit), or the
// service admin's (neither).
func (s *Service) count(ctx context.Context, org, tenantID, id uuid.UUID, api API, issued, fetched int64) {
	var (
		key     uuid.UUID // the service admin: the nil key
		subject string
	)
	if p, ok := auth.PrincipalFrom(ctx); ok {
		subject = p.Subject // a service-admin workload identity is named too
		if !p.ServiceAdmin {
			key = p.Key
		}
	}
	k := countKey{org: org, key: key, subject: subject, tenant: tenantID, integration: id, api: api, window: s.now().UTC().Truncate(time.Hour)}
	s.countMu.Lock()
	c := s.counts[k]
	if c == nil {
		c = &IssuanceCount{Org: org, Key: key, Subject: subject, Integration: id, API: api, Window: k.window}
		s.counts[k] = c
	}
	c.Issued += issued
	c.Fetched += fetched
	s.countMu.Unlock()
}
