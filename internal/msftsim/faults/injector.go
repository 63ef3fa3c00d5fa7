package faults

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// Kind names an injected fault in decisions, counters and the request log.
const (
	KindThrottle     = "throttle"
	KindEarlyRetry   = "early_retry"
	KindServerError  = "server_error"
	KindLatency      = "latency"
	KindLostResponse = "lost_response"
)

// Decision is what to do with one request.
type Decision struct {
	Delay      time.Duration
	Status     int // 0: serve normally
	RetryAfter int // seconds, for 429
	Kind       string
	// LimitPercentage, when positive, is the share of a Throttle.Limit
	// budget used (0.8 and up), for x-ms-throttle-limit-percentage.
	LimitPercentage float64
}

type budget struct {
	start time.Time
	count int
}

// Injector applies a Config. It is safe for concurrent use.
type Injector struct {
	mu        sync.Mutex
	cfg       Config
	empty     bool
	rng       *rand.Rand
	matched   map[string]int // requests seen per origin+kind
	injected  map[string]int // faults injected per origin+kind
	throttled map[string]time.Time
	early     map[string]int64            // early retries per route
	earlyBy   map[string]map[string]bool  // route -> clients that retried early
	earlyTen  map[string]map[string]int64 // tenant -> route -> early retries
	budgets   map[string]*budget
	wallNow   func() time.Time
}

// NewInjector returns an injector with no faults, drawing randomness from seed.
func NewInjector(seed uint64) *Injector {
	return &Injector{
		empty:     true,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		matched:   map[string]int{},
		injected:  map[string]int{},
		throttled: map[string]time.Time{},
		early:     map[string]int64{},
		earlyBy:   map[string]map[string]bool{},
		earlyTen:  map[string]map[string]int64{},
		budgets:   map[string]*budget{},
		wallNow:   time.Now,
	}
}

// Set replaces the configuration and resets the Every/Count bookkeeping.
func (in *Injector) Set(c Config) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cfg = c.normalize()
	in.empty = isEmpty(in.cfg)
	in.matched = map[string]int{}
	in.injected = map[string]int{}
	in.budgets = map[string]*budget{}
}

// SetTenant replaces one tenant's scope (an empty scope removes it) and
// resets only that tenant's Every/Count bookkeeping; the rest of the
// configuration and its bookkeeping are kept.
func (in *Injector) SetTenant(tenant string, sc Scope) {
	in.mu.Lock()
	defer in.mu.Unlock()
	key := strings.ToLower(tenant)
	tenants := make(map[string]Scope, len(in.cfg.Tenants)+1)
	for k, v := range in.cfg.Tenants {
		tenants[k] = v
	}
	if isEmpty(Config{Scope: sc}) {
		delete(tenants, key)
	} else {
		tenants[key] = sc
	}
	if len(tenants) == 0 {
		tenants = nil
	}
	in.cfg.Tenants = tenants
	in.empty = isEmpty(in.cfg)
	prefix := "tenant:" + key
	for _, m := range []map[string]int{in.matched, in.injected} {
		for k := range m {
			if strings.HasPrefix(strings.ToLower(k), prefix) {
				delete(m, k)
			}
		}
	}
	for k := range in.budgets {
		if strings.HasPrefix(strings.ToLower(k), prefix) {
			delete(in.budgets, k)
		}
	}
}

// TenantEarlyRetries returns, per route, the early retries of tenant's clients.
func (in *Injector) TenantEarlyRetries(tenant string) map[string]int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int64{}
	for k, v := range in.earlyTen[strings.ToLower(tenant)] {
		out[k] = v
	}
	return out
}

// Config returns the current configuration.
func (in *Injector) Config() Config {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cfg
}

func isEmpty(c Config) bool {
	empty := func(r Rule) bool { return r == Rule{} }
	if !empty(c.Rule) || len(c.Tenants) > 0 {
		return false
	}
	for _, r := range c.Routes {
		if !empty(r) {
			return false
		}
	}
	return true
}

// EarlyRetries returns, per route, how many requests came back from a
// throttled client before its Retry-After had elapsed.
func (in *Injector) EarlyRetries() map[string]int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int64, len(in.early))
	for k, v := range in.early {
		out[k] = v
	}
	return out
}

// ResetCounters clears the early-retry counters and open throttle windows.
func (in *Injector) ResetCounters() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.early = map[string]int64{}
	in.earlyBy = map[string]map[string]bool{}
	in.earlyTen = map[string]map[string]int64{}
	in.throttled = map[string]time.Time{}
}

// EarlyRetryClients returns, per route, how many distinct clients (tenant
// and app) came back before their Retry-After elapsed.
func (in *Injector) EarlyRetryClients() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int, len(in.earlyBy))
	for k, v := range in.earlyBy {
		out[k] = len(v)
	}
	return out
}

// Decide picks the faults for one request of client (an app ID or address)
// to route in tenant. Callers sleep Delay (see Apply) and, when Status is
// set, answer with it in their API's error shape.
func (in *Injector) Decide(route, tenant, client string) Decision {
	in.mu.Lock()
	defer in.mu.Unlock()
	var d Decision
	// Throttling windows are per API (the part of the route before the
	// first dot: graph, entra, arm, ...), tenant and client.
	family, _, _ := strings.Cut(route, ".")
	key := family + "|" + tenant + "|" + client
	if until, ok := in.throttled[key]; ok {
		now := in.wallNow()
		if now.Before(until) {
			in.early[route]++
			if in.earlyBy[route] == nil {
				in.earlyBy[route] = map[string]bool{}
			}
			in.earlyBy[route][tenant+"|"+client] = true
			tk := strings.ToLower(tenant)
			if in.earlyTen[tk] == nil {
				in.earlyTen[tk] = map[string]int64{}
			}
			in.earlyTen[tk][route]++
			return Decision{Status: 429, RetryAfter: int(math.Ceil(until.Sub(now).Seconds())), Kind: KindEarlyRetry}
		}
		delete(in.throttled, key)
	}
	if in.empty {
		return d
	}
	var lat *Latency
	var thr, thrOrigin = (*Throttle)(nil), ""
	var se, seOrigin = (*ServerErrors)(nil), ""
	for _, o := range in.cfg.layers(tenant, route) {
		if o.rule.Latency != nil {
			lat = o.rule.Latency
		}
		if o.rule.Throttle != nil {
			thr, thrOrigin = o.rule.Throttle, o.name
		}
		if o.rule.ServerErrors != nil {
			se, seOrigin = o.rule.ServerErrors, o.name
		}
	}
	if lat != nil {
		d.Delay = time.Duration(lat.Min)
		if lat.Max > lat.Min {
			d.Delay += time.Duration(in.rng.Int64N(int64(lat.Max - lat.Min)))
		}
		if lat.Mean > 0 {
			d.Delay += time.Duration(in.rng.ExpFloat64() * float64(lat.Mean))
		}
	}
	if thr != nil && thr.Limit > 0 {
		if over := in.spend(thr, thrOrigin+"|"+key, key, &d); over {
			return d
		}
	} else if thr != nil && in.fire(thrOrigin+"|throttle", thr.Rate, thr.Every, thr.Count) {
		ra := thr.RetryAfterSeconds
		if ra <= 0 {
			ra = 1
		}
		in.throttled[key] = in.wallNow().Add(time.Duration(ra) * time.Second)
		d.Status, d.RetryAfter, d.Kind = 429, ra, KindThrottle
		return d
	}
	if se != nil && in.fire(seOrigin+"|5xx", se.Rate, se.Every, se.Count) {
		d.Status, d.Kind = se.Status, KindServerError
		if d.Status == 0 {
			d.Status = 503
		}
	}
	return d
}

// spend counts one request against a Limit/Window budget; it reports
// whether the budget is exhausted (d then holds the 429).
func (in *Injector) spend(thr *Throttle, budgetKey, clientKey string, d *Decision) bool {
	now := in.wallNow()
	window := time.Duration(thr.Window)
	if window <= 0 {
		window = time.Minute
	}
	b := in.budgets[budgetKey]
	if b == nil || now.Sub(b.start) >= window {
		b = &budget{start: now}
		in.budgets[budgetKey] = b
	}
	b.count++
	pct := float64(b.count) / float64(thr.Limit)
	if pct >= 0.8 {
		d.LimitPercentage = pct
	}
	if b.count <= thr.Limit {
		return false
	}
	ra := int(math.Ceil(b.start.Add(window).Sub(now).Seconds()))
	if ra < 1 {
		ra = 1
	}
	in.throttled[clientKey] = now.Add(time.Duration(ra) * time.Second)
	d.Status, d.RetryAfter, d.Kind = 429, ra, KindThrottle
	return true
}

func (in *Injector) fire(key string, rate float64, every, count int) bool {
	in.matched[key]++
	if count > 0 && in.injected[key] >= count {
		return false
	}
	hit := false
	switch {
	case every > 0:
		hit = in.matched[key]%every == 0
	case rate > 0:
		hit = in.rng.Float64() < rate
	}
	if hit {
		in.injected[key]++
	}
	return hit
}

// Apply decides, and applies the latency: inside the simulator's request
// middleware (observe), the answer leaves Delay after the request arrived,
// the handler's own work running meanwhile (a fixed latency per call, as
// a remote service has, not Delay plus the simulator's CPU); elsewhere it
// sleeps Delay (returning early if ctx ends).
func (in *Injector) Apply(ctx context.Context, route, tenant, client string) Decision {
	d := in.Decide(route, tenant, client)
	if d.Delay > 0 && !observe.InfoFrom(ctx).AnswerAfter(d.Delay) {
		t := time.NewTimer(d.Delay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return d
}

// Conflict reports whether a credential change through route in tenant
// should fail as a concurrent update (see Rule.CredentialConflicts).
func (in *Injector) Conflict(route, tenant string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.empty {
		return false
	}
	var inj *Injection
	origin := ""
	for _, o := range in.cfg.layers(tenant, route) {
		if o.rule.CredentialConflicts != nil {
			inj, origin = o.rule.CredentialConflicts, o.name
		}
	}
	return inj != nil && in.fire(origin+"|conflict", inj.Rate, inj.Every, inj.Count)
}

// LoseResponse reports whether the answer to this request of route in
// tenant is to be lost after serving it, and the status to answer instead.
func (in *Injector) LoseResponse(route, tenant string) (int, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.empty {
		return 0, false
	}
	var lr *LostResponses
	origin := ""
	for _, o := range in.cfg.layers(tenant, route) {
		if o.rule.LostResponses != nil {
			lr, origin = o.rule.LostResponses, o.name
		}
	}
	if lr == nil || !in.fire(origin+"|lost", lr.Rate, lr.Every, lr.Count) {
		return 0, false
	}
	if lr.Status == 0 {
		return http.StatusGatewayTimeout, true
	}
	return lr.Status, true
}

// TokenError returns the AADSTS code a token request of route in tenant
// is to be refused with (Rule.TokenErrors), or 0.
func (in *Injector) TokenError(route, tenant string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.empty {
		return 0
	}
	var te *TokenErrors
	origin := ""
	for _, o := range in.cfg.layers(tenant, route) {
		if o.rule.TokenErrors != nil {
			te, origin = o.rule.TokenErrors, o.name
		}
	}
	if te == nil || te.Code == 0 {
		return 0
	}
	if te.Rate == 0 && te.Every == 0 {
		// Neither rate nor every: every matching request (the common case:
		// "this tenant answers AADSTS530032").
		in.matched[origin+"|tokenerror"]++
		if te.Count > 0 && in.injected[origin+"|tokenerror"] >= te.Count {
			return 0
		}
		in.injected[origin+"|tokenerror"]++
		return te.Code
	}
	if !in.fire(origin+"|tokenerror", te.Rate, te.Every, te.Count) {
		return 0
	}
	return te.Code
}

// LagFor returns the lag of the given kind ("object", "secret", "consent")
// that applies to something created through route in tenant.
func (in *Injector) LagFor(kind, tenant, route string) Lag {
	in.mu.Lock()
	defer in.mu.Unlock()
	var l *Lag
	for _, o := range in.cfg.layers(tenant, route) {
		var c *Lag
		switch kind {
		case "object":
			c = o.rule.ObjectLag
		case "secret":
			c = o.rule.SecretLag
		case "consent":
			c = o.rule.ConsentLag
		}
		if c != nil {
			l = c
		}
	}
	if l == nil {
		return Lag{}
	}
	return *l
}
