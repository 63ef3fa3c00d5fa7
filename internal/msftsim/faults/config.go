// Package faults decides which failures the simulator injects: latency,
// throttling (429 + Retry-After), server errors, and the replication-lag
// parameters the directory applies to new objects, secrets and consents.
// Rules are set globally, per tenant and per route, can be replaced at run
// time, and draw randomness from a seeded generator so runs repeat.
package faults

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "250ms"-style strings or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a string like \"2s\" or a number of seconds")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Latency delays responses: uniformly in [Min, Max], plus an exponentially
// distributed extra with mean Mean when Mean is set.
type Latency struct {
	Min  Duration `json:"min,omitempty"`
	Max  Duration `json:"max,omitempty"`
	Mean Duration `json:"mean,omitempty"`
}

// Throttle answers 429 with Retry-After. Rate is a probability per request;
// Every injects on every Nth matching request (deterministic); Count stops
// after that many injections (0: no limit). While a client's Retry-After has
// not elapsed (wall time), its requests are answered 429 again and counted as
// early retries.
//
// Limit and Window instead model a budget, as Graph's identity limits do
// (e.g. 3000 writes per 150 s per app and tenant): each client (app) may
// make Limit requests per Window (wall time) to the matching routes of a
// tenant; past 80% of it responses carry x-ms-throttle-limit-percentage,
// past 100% they are 429 with Retry-After until the window ends.
type Throttle struct {
	Rate              float64  `json:"rate,omitempty"`
	Every             int      `json:"every,omitempty"`
	Count             int      `json:"count,omitempty"`
	RetryAfterSeconds int      `json:"retryAfterSeconds,omitempty"`
	Limit             int      `json:"limit,omitempty"`
	Window            Duration `json:"window,omitempty"`
}

// ServerErrors answers Status (default 503) with the API's error shape.
type ServerErrors struct {
	Rate   float64 `json:"rate,omitempty"`
	Every  int     `json:"every,omitempty"`
	Count  int     `json:"count,omitempty"`
	Status int     `json:"status,omitempty"`
}

// Lag hides something new: for Reads reads (each read that would have
// found it consumes one) and/or until For has passed on the simulator clock.
type Lag struct {
	Reads int      `json:"reads,omitempty"`
	For   Duration `json:"for,omitempty"`
}

// Active reports whether the lag hides anything.
func (l *Lag) Active() bool { return l != nil && (l.Reads > 0 || l.For > 0) }

// Rule is one set of faults. Nil fields inherit from the broader scope.
type Rule struct {
	Latency      *Latency      `json:"latency,omitempty"`
	Throttle     *Throttle     `json:"throttle,omitempty"`
	ServerErrors *ServerErrors `json:"serverErrors,omitempty"`
	// ObjectLag: new applications, service principals, app role assignments
	// and ARM role assignments are invisible to reads and dependent writes.
	ObjectLag *Lag `json:"objectLag,omitempty"`
	// SecretLag: a new client secret is rejected with AADSTS7000215.
	SecretLag *Lag `json:"secretLag,omitempty"`
	// ConsentLag: a new app role assignment is missing from issued tokens.
	ConsentLag *Lag `json:"consentLag,omitempty"`
	// CredentialConflicts answers credential changes (addPassword,
	// removePassword, PATCH of keyCredentials) with Graph's 400 "concurrent
	// requests being made to the tenant".
	CredentialConflicts *Injection `json:"credentialConflicts,omitempty"`
	// LostResponses serves a Graph request (a write lands) and then answers
	// Status (default 504) instead of its result, as a gateway that timed
	// out after the backend finished: the client cannot tell whether its
	// write happened.
	LostResponses *LostResponses `json:"lostResponses,omitempty"`
	// TokenErrors answers matching token requests (route entra.token) with
	// Entra's error for AADSTS Code, in Entra's body shape, before the
	// credentials are checked: the codes an app-only sign-in meets that no
	// simulated condition produces (docs/msftsim.md lists them).
	TokenErrors *TokenErrors `json:"tokenErrors,omitempty"`
}

// TokenErrors fires like Injection; Code is the AADSTS number to answer
// (e.g. 530032).
type TokenErrors struct {
	Injection
	Code int `json:"code"`
}

// LostResponses fires like Injection; Status is the answer sent instead
// (default 504).
type LostResponses struct {
	Injection
	Status int `json:"status,omitempty"`
}

// Injection fires like Throttle: probability Rate, or every Nth matching
// request, at most Count times (0: no limit).
type Injection struct {
	Rate  float64 `json:"rate,omitempty"`
	Every int     `json:"every,omitempty"`
	Count int     `json:"count,omitempty"`
}

// Scope is a rule plus per-route overrides. Route keys are route names
// (see docs/msftsim.md) or prefixes ending in "*", e.g. "graph.*".
type Scope struct {
	Rule
	Routes map[string]Rule `json:"routes,omitempty"`
}

// Config is the whole fault configuration. Precedence, broadest first:
// global rule, global routes, tenant rule, tenant routes.
type Config struct {
	Scope
	Tenants map[string]Scope `json:"tenants,omitempty"`
}

type origin struct {
	rule Rule
	name string
}

// layers returns the rules that apply to (tenant, route), broadest first.
func (c *Config) layers(tenant, route string) []origin {
	out := []origin{{c.Rule, "global"}}
	out = appendRoutes(out, "global", c.Routes, route)
	if ts, ok := c.Tenants[strings.ToLower(tenant)]; ok && tenant != "" {
		out = append(out, origin{ts.Rule, "tenant:" + tenant})
		out = appendRoutes(out, "tenant:"+tenant, ts.Routes, route)
	}
	return out
}

func appendRoutes(out []origin, prefix string, routes map[string]Rule, route string) []origin {
	// prefixes first (shorter before longer), exact match last
	best := ""
	for k := range routes {
		if strings.HasSuffix(k, "*") && strings.HasPrefix(route, strings.TrimSuffix(k, "*")) && len(k) > len(best) {
			if best != "" {
				out = append(out, origin{routes[best], prefix + "/route:" + best})
			}
			best = k
		}
	}
	if best != "" {
		out = append(out, origin{routes[best], prefix + "/route:" + best})
	}
	if r, ok := routes[route]; ok {
		out = append(out, origin{r, prefix + "/route:" + route})
	}
	return out
}

// normalize lower-cases tenant keys so lookups are case-insensitive.
func (c Config) normalize() Config {
	if len(c.Tenants) == 0 {
		return c
	}
	t := make(map[string]Scope, len(c.Tenants))
	for k, v := range c.Tenants {
		t[strings.ToLower(k)] = v
	}
	c.Tenants = t
	return c
}
