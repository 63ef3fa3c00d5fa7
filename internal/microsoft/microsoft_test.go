package microsoft_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

func TestValidCredentialsTokensAndProbes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.fullApp()
	s := e.session(e.creds(c))
	ctx := t.Context()

	for _, tc := range []struct {
		api   microsoft.API
		roles []string
	}{
		{microsoft.APIGraph, graphRoles},
		{microsoft.APIDefender, []string{"Machine.Read.All"}},
		{microsoft.APILogAnalytics, []string{"Data.Read"}},
		{microsoft.APICloudApps, []string{"investigation.read"}},
		{microsoft.APIARM, nil}, // Azure RBAC, not app roles
		{microsoft.APIExchange, nil},
	} {
		tok, err := s.Token(ctx, tc.api)
		if err != nil {
			t.Fatalf("Token(%s): %v", tc.api, err)
		}
		want := slices.Sorted(slices.Values(tc.roles))
		got := slices.Sorted(slices.Values(tok.Roles))
		if !slices.Equal(got, want) {
			t.Errorf("Token(%s) roles %v, want %v", tc.api, got, want)
		}
		if !tok.ExpiresOn.After(t0) || tok.ExpiresOn.After(t0.Add(2*time.Hour)) {
			t.Errorf("Token(%s) expires %v (sim clock %v)", tc.api, tok.ExpiresOn, t0)
		}
	}
	for _, p := range []microsoft.Probe{microsoft.ProbeGraphAlerts, microsoft.ProbeGraphIncidents, microsoft.ProbeGraphSignIns,
		microsoft.ProbeGraphUsers, microsoft.ProbeDefenderMachines, microsoft.ProbeSentinelWorkspace, microsoft.ProbeLogAnalyticsQuery} {
		if err := s.Probe(ctx, p, e.workspace()); err != nil {
			t.Errorf("Probe(%s): %v", p, err)
		}
	}
	// One credential per session: its tokens are cached within the session
	// (one token request per API), never shared with the next session.
	if n := e.admin.Count("entra.token").Requests; n != 6 {
		t.Errorf("token requests %d, want 6 (one per API)", n)
	}
	if err := e.session(e.creds(c)).Probe(ctx, microsoft.ProbeGraphUsers, nil); err != nil {
		t.Fatal(err)
	}
	if n := e.admin.Count("entra.token").Requests; n != 7 {
		t.Errorf("a new session reused a token: %d token requests, want 7", n)
	}
	// A client-secret session requests its tokens itself at the tenant's
	// token endpoint: no authority metadata is fetched.
	if n := e.admin.Count("entra.openidConfiguration").Requests; n != 0 {
		t.Errorf("openid-configuration fetched %d times, want 0", n)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok := e.app(graphRoles)
	disabled := e.app(graphRoles)
	blocked := e.app(graphRoles)
	if err := e.admin.SetAppEnabled(e.tenant, disabled.ClientID, false); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.BlockConditionalAccess(e.tenant, blocked.ClientID, true); err != nil {
		t.Fatal(err)
	}
	cr := func(c msftsim.AppCreds, mod func(*microsoft.Credentials)) microsoft.Credentials {
		v := e.creds(c)
		if mod != nil {
			mod(&v)
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		cr    microsoft.Credentials
		class mserr.Class
		code  string
		lag   bool
	}{
		{"wrong secret", cr(ok, func(v *microsoft.Credentials) { v.Secret = "not-the-secret" }), mserr.ClassInvalidSecret, "AADSTS7000215", true},
		{"secret ID pasted", cr(ok, func(v *microsoft.Credentials) { v.Secret = ok.SecretKeyID }), mserr.ClassInvalidSecret, "AADSTS7000215", true},
		{"unknown client", cr(ok, func(v *microsoft.Credentials) { v.ClientID = "0b0b0b0b-0000-4000-8000-000000000000" }), mserr.ClassAppNotFound, "AADSTS700016", true},
		{"unknown tenant", cr(ok, func(v *microsoft.Credentials) { v.TenantID = "99999999-9999-4999-8999-999999999999" }), mserr.ClassTenantNotFound, "AADSTS90002", false},
		{"malformed tenant", cr(ok, func(v *microsoft.Credentials) { v.TenantID = "notadomain" }), mserr.ClassTenantNotFound, "AADSTS900023", false},
		{"tenant with bad characters", cr(ok, func(v *microsoft.Credentials) { v.TenantID = "contoso tenant/x" }), mserr.ClassTenantNotFound, "AADSTS900023", false},
		{"disabled app", cr(disabled, nil), mserr.ClassAppDisabled, "AADSTS7000112", false},
		{"conditional access", cr(blocked, nil), mserr.ClassPolicyBlocked, "AADSTS53003", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := e.client.NewSession(tc.cr)
			if err == nil {
				_, err = s.Token(t.Context(), microsoft.APIGraph)
			}
			me := wantErr(t, err, tc.class, tc.code)
			if me.Service != "entra" || mserr.IsReplicationLag(me) != tc.lag {
				t.Fatalf("service %q lag %v: %v", me.Service, mserr.IsReplicationLag(me), me)
			}
			if tc.cr.Secret != "" && contains(me.Error()+me.Message+me.Remedy, tc.cr.Secret) {
				t.Fatalf("the secret leaked into the error: %v", me)
			}
			// A probe reports the same token failure.
			if s != nil {
				_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeGraphUsers, nil), tc.class, tc.code)
			}
		})
	}
	if me := wantErr(t, mustSessionErr(e, cr(ok, func(v *microsoft.Credentials) { v.Secret = "x" })), mserr.ClassInvalidSecret, ""); me.Remedy == "" ||
		!contains(me.Remedy, "Value (not its Secret ID)") {
		t.Fatalf("remedy %q", me.Remedy)
	}
}

func mustSessionErr(e *env, cr microsoft.Credentials) error {
	s := e.session(cr)
	_, err := s.Token(e.t.Context(), microsoft.APIGraph)
	return err
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

func TestExpiredSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: graphRoles, SecretLifetime: "720h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.session(e.creds(c)).Token(t.Context(), microsoft.APIGraph); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	e.admin.AdvanceClock(721 * time.Hour)
	_, err = e.session(e.creds(c)).Token(t.Context(), microsoft.APIGraph)
	if me := wantErr(t, err, mserr.ClassExpiredSecret, "AADSTS7000222"); !contains(me.Remedy, "Rotate") {
		t.Fatalf("remedy %q", me.Remedy)
	}
}

func TestMissingConsentAndRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.app([]string{"User.Read.All"}) // nothing else consented, no Azure role
	s := e.session(e.creds(c))
	ctx := t.Context()
	tok, err := s.Token(ctx, microsoft.APIGraph)
	if err != nil || !slices.Equal(tok.Roles, []string{"User.Read.All"}) {
		t.Fatalf("token: %v %v (missing consent does not fail the token)", tok.Roles, err)
	}
	for _, tc := range []struct {
		p       microsoft.Probe
		service string
		code    string
	}{
		{microsoft.ProbeGraphAlerts, "graph", "Authorization_RequestDenied"},
		{microsoft.ProbeGraphIncidents, "graph", "Authorization_RequestDenied"},
		{microsoft.ProbeGraphSignIns, "graph", "Authorization_RequestDenied"},
		{microsoft.ProbeDefenderMachines, "defender", "Forbidden"},
		{microsoft.ProbeLogAnalyticsQuery, "loganalytics", "InsufficientAccessError"},
		{microsoft.ProbeSentinelWorkspace, "arm", "AuthorizationFailed"},
	} {
		me := wantErr(t, s.Probe(ctx, tc.p, e.workspace()), mserr.ClassPermissionMissing, tc.code)
		if me.Status != 403 || me.Service != tc.service {
			t.Errorf("%s: %+v", tc.p, me)
		}
	}
	if err := s.Probe(ctx, microsoft.ProbeGraphUsers, nil); err != nil {
		t.Fatalf("users: %v", err)
	}
}

func TestNotLicensed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.fullApp()
	// Only Log Analytics left: Defender's service principal disappears, the
	// Graph security and sign-in APIs answer their "not licensed" 403.
	if err := e.admin.SetLicences(e.tenant, map[string]string{msftsim.LicenceLogAnalytics: ""}); err != nil {
		t.Fatal(err)
	}
	s := e.session(e.creds(c))
	ctx := t.Context()
	me := wantErr(t, s.Probe(ctx, microsoft.ProbeDefenderMachines, nil), mserr.ClassNotLicensed, "AADSTS500011")
	if me.Service != "entra" {
		t.Fatalf("service %q", me.Service)
	}
	_ = wantErr(t, s.Probe(ctx, microsoft.ProbeGraphAlerts, nil), mserr.ClassNotLicensed, "Forbidden")
	_ = wantErr(t, s.Probe(ctx, microsoft.ProbeGraphIncidents, nil), mserr.ClassNotLicensed, "Forbidden")
	_ = wantErr(t, s.Probe(ctx, microsoft.ProbeGraphSignIns, nil), mserr.ClassNotLicensed, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	// The rest is judged normally.
	for _, p := range []microsoft.Probe{microsoft.ProbeGraphUsers, microsoft.ProbeSentinelWorkspace, microsoft.ProbeLogAnalyticsQuery} {
		if err := s.Probe(ctx, p, e.workspace()); err != nil {
			t.Errorf("Probe(%s): %v", p, err)
		}
	}
	// A suspended licence keeps the service principal: AADSTS650052.
	if err := e.admin.SetLicences(e.tenant, map[string]string{msftsim.LicenceLogAnalytics: "suspended"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.session(e.creds(c)).Token(ctx, microsoft.APILogAnalytics)
	_ = wantErr(t, err, mserr.ClassNotLicensed, "AADSTS650052")
}

func TestNewSecretWithinActivationLag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.app(graphRoles)
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.applications.addPassword": {SecretLag: &faults.Lag{For: faults.Duration(15 * time.Second)}}}}})
	secret := e.addPassword(c.ObjectID)
	cr := e.creds(c)
	cr.Secret = secret
	_, err := e.session(cr).Token(t.Context(), microsoft.APIGraph)
	me := wantErr(t, err, mserr.ClassInvalidSecret, "AADSTS7000215")
	if !mserr.IsReplicationLag(me) {
		t.Fatalf("a new secret's rejection is not marked as possible lag: %+v", me)
	}
	e.admin.AdvanceClock(15 * time.Second)
	// A fresh session (fresh credential) after the lag succeeds.
	if _, err := e.session(cr).Token(t.Context(), microsoft.APIGraph); err != nil {
		t.Fatalf("after the lag: %v", err)
	}
}

func TestWorkspaceIDMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.session(e.creds(e.fullApp()))
	ws := e.workspace()
	ws.WorkspaceID = "00000000-0000-4000-8000-000000000000"
	me := wantErr(t, s.Probe(t.Context(), microsoft.ProbeSentinelWorkspace, ws), mserr.ClassNotFound, "WorkspaceIdMismatch")
	if !contains(me.Remedy, e.ws.CustomerID) {
		t.Fatalf("remedy does not name the right Workspace ID: %q", me.Remedy)
	}
	_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeLogAnalyticsQuery, ws), mserr.ClassNotFound, "WorkspaceNotFoundError")
	ws = e.workspace()
	ws.Name = "other"
	_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeSentinelWorkspace, ws), mserr.ClassNotFound, "ResourceNotFound")
	_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeSentinelWorkspace, nil), mserr.ClassNotConfigured, "NoWorkspace")
}

func TestThrottleStormHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.fullApp()
	// Two 429s on Graph, one on the token endpoint and one on ARM, each
	// Retry-After: 1.
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.users.list":   {Throttle: &faults.Throttle{Every: 1, Count: 2, RetryAfterSeconds: 1}},
		"entra.token":        {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 1}},
		"arm.workspaces.get": {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 1}},
	}}})
	s := e.session(e.creds(c))
	start := time.Now()
	if err := s.Probe(t.Context(), microsoft.ProbeGraphUsers, nil); err != nil {
		t.Fatalf("users through the storm: %v", err)
	}
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("three Retry-After: 1 answers passed in %v", d)
	}
	if err := s.Probe(t.Context(), microsoft.ProbeSentinelWorkspace, e.workspace()); err != nil {
		t.Fatalf("workspace through the storm: %v", err)
	}
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("early retries: %v", e.admin.EarlyRetries())
	}
	if cnt := e.admin.Count("graph.users.list"); cnt.Statuses[429] != 2 || cnt.Statuses[200] != 1 {
		t.Fatalf("graph.users.list %+v", cnt)
	}
	if cnt := e.admin.Count("entra.token"); cnt.Statuses[429] != 1 {
		t.Fatalf("entra.token %+v", cnt)
	}
}

func TestThrottleStormConcludes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *microsoft.Config) { c.MaxThrottleWait = 2500 * time.Millisecond })
	c := e.fullApp()
	s := e.session(e.creds(c))
	if _, err := s.Token(t.Context(), microsoft.APIGraph); err != nil {
		t.Fatal(err)
	}
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.*": {Throttle: &faults.Throttle{Every: 1, RetryAfterSeconds: 1}},
	}}})
	start := time.Now()
	me := wantErr(t, s.Probe(t.Context(), microsoft.ProbeGraphAlerts, nil), mserr.ClassThrottled, "TooManyRequests")
	if d := time.Since(start); d < 2*time.Second || d > 8*time.Second {
		t.Fatalf("concluded after %v, want the 2.5s budget used by whole Retry-After waits", d)
	}
	if me.RetryAfter < time.Second || me.Status != 429 {
		t.Fatalf("%+v", me)
	}
	// The window Microsoft asked for is still open: a new call of the same
	// caller, with a deadline before it closes, does not even send.
	before := e.admin.Count("graph.security.incidents").Requests
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_ = wantErr(t, s.Probe(ctx, microsoft.ProbeGraphIncidents, nil), mserr.ClassThrottled, "TooManyRequests")
	if n := e.admin.Count("graph.security.incidents").Requests; n != before {
		t.Fatalf("sent %d requests inside an open Retry-After window", n-before)
	}
	// Another caller: its first 429 asks for more than its deadline allows,
	// so it concludes at once (had it started the wait, the deadline would
	// have ended it as a timeout, not as throttled).
	s2 := e.session(e.creds(e.fullApp()))
	ctx2, cancel2 := context.WithTimeout(t.Context(), 900*time.Millisecond)
	defer cancel2()
	_ = wantErr(t, s2.Probe(ctx2, microsoft.ProbeGraphUsers, nil), mserr.ClassThrottled, "TooManyRequests")
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("early retries: %v", e.admin.EarlyRetries())
	}
}

func TestServerErrorsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.fullApp()
	s := e.session(e.creds(c))
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.users.list":   {ServerErrors: &faults.ServerErrors{Every: 1, Count: 2, Status: 500}},
		"loganalytics.query": {ServerErrors: &faults.ServerErrors{Every: 1, Count: 1, Status: 502}},
		"entra.token":        {ServerErrors: &faults.ServerErrors{Every: 1, Count: 1, Status: 500}},
	}}})
	if err := s.Probe(t.Context(), microsoft.ProbeGraphUsers, nil); err != nil {
		t.Fatalf("users after two 500s: %v", err)
	}
	if cnt := e.admin.Count("graph.users.list"); cnt.Statuses[500] != 2 || cnt.Statuses[200] != 1 {
		t.Fatalf("graph.users.list %+v", cnt)
	}
	if err := s.Probe(t.Context(), microsoft.ProbeLogAnalyticsQuery, e.workspace()); err != nil {
		t.Fatalf("query after a 502: %v", err)
	}
	// Persistent errors: a bounded number of attempts, then transient.
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"defender.*": {ServerErrors: &faults.ServerErrors{Every: 1, Status: 500}},
	}}})
	_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeDefenderMachines, nil), mserr.ClassTransient, "ServiceUnavailable")
	if n := e.admin.Count("defender.machines.list").Requests; n != 3 {
		t.Fatalf("defender attempts %d, want 3", n)
	}
}

// Probes of one check run concurrently (internal/verify does): a 429 to one
// of them must hold back the others, including requests not yet sent.
func TestConcurrentProbesInAStorm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.session(e.creds(e.fullApp()))
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.*": {Throttle: &faults.Throttle{Every: 2, Count: 3, RetryAfterSeconds: 1}},
	}}})
	probes := []microsoft.Probe{microsoft.ProbeGraphAlerts, microsoft.ProbeGraphIncidents, microsoft.ProbeGraphSignIns, microsoft.ProbeGraphUsers,
		microsoft.ProbeDefenderMachines, microsoft.ProbeSentinelWorkspace, microsoft.ProbeLogAnalyticsQuery}
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() { errs[i] = s.Probe(t.Context(), p, e.workspace()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Probe(%s): %v", probes[i], err)
		}
	}
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("early retries: %v", e.admin.EarlyRetries())
	}
	var throttled int64
	for _, rc := range e.admin.Counters() {
		throttled += rc.Statuses[429]
	}
	if throttled == 0 {
		t.Fatal("nothing was throttled: the test proves nothing")
	}
}
