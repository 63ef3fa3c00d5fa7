package faults

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Profiles are named fault configurations for demos and soak runs.
var Profiles = map[string]Config{
	// none: no faults.
	"none": {},
	// flaky: what a busy tenant looks like. Some latency, occasional 429
	// and 503, new objects invisible to the next read, new secrets
	// rejected for a few seconds, new consent missing from tokens for 30 s.
	"flaky": {Scope: Scope{Rule: Rule{
		Latency:      &Latency{Min: Duration(20 * time.Millisecond), Max: Duration(150 * time.Millisecond)},
		Throttle:     &Throttle{Rate: 0.03, RetryAfterSeconds: 2},
		ServerErrors: &ServerErrors{Rate: 0.02, Status: 503},
		ObjectLag:    &Lag{Reads: 1, For: Duration(2 * time.Second)},
		SecretLag:    &Lag{For: Duration(8 * time.Second)},
		ConsentLag:   &Lag{For: Duration(30 * time.Second)},
	}}},
	// replication: only eventual consistency, at the lags peers observed
	// (section 5 of the reference): objects 10 s, secrets 18 s, consent 30 s.
	"replication": {Scope: Scope{Rule: Rule{
		ObjectLag:  &Lag{Reads: 2, For: Duration(10 * time.Second)},
		SecretLag:  &Lag{For: Duration(18 * time.Second)},
		ConsentLag: &Lag{For: Duration(30 * time.Second)},
	}}},
	// graph-limits: Graph's identity write budget (3,000 per 150 s per app
	// and tenant) on application and service principal writes.
	"graph-limits": {Scope: Scope{Routes: map[string]Rule{
		"graph.applications.*":      {Throttle: &Throttle{Limit: 3000, Window: Duration(150 * time.Second)}},
		"graph.servicePrincipals.*": {Throttle: &Throttle{Limit: 3000, Window: Duration(150 * time.Second)}},
		"graph.appRoleAssignedTo.*": {Throttle: &Throttle{Limit: 3000, Window: Duration(150 * time.Second)}},
	}}},
}

// Profile returns the named profile.
func Profile(name string) (Config, error) {
	c, ok := Profiles[name]
	if !ok {
		names := make([]string, 0, len(Profiles))
		for n := range Profiles {
			names = append(names, n)
		}
		slices.Sort(names)
		return Config{}, fmt.Errorf("unknown fault profile %q (have %s)", name, strings.Join(names, ", "))
	}
	return c, nil
}
