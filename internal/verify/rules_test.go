package verify

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

func steps(statuses ...StepStatus) []Step {
	out := make([]Step, len(statuses))
	for i, s := range statuses {
		out[i] = Step{Name: string(s), Status: s}
	}
	return out
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		steps []Step
		want  integration.State
	}{
		{"every step passed", steps(StepPassed, StepPassed), integration.StateHealthy},
		{"no steps", nil, integration.StateHealthy},
		{"not licensed is not held against it", steps(StepPassed, StepUnavailable), integration.StateHealthy},
		{"a warning", steps(StepPassed, StepWarning), integration.StateDegraded},
		{"a skipped step: incomplete", steps(StepPassed, StepSkipped), integration.StateDegraded},
		{"a failure", steps(StepPassed, StepWarning, StepFailed), integration.StateBroken},
		{"lag only", steps(StepPropagating, StepWarning, StepSkipped), integration.StatePropagating},
		{"a failure beats lag", steps(StepPropagating, StepFailed), integration.StateBroken},
		{"a policy block beats everything", steps(StepFailed, StepPropagating, StepBlocked), integration.StateBlockedByPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, summary := Outcome(tc.steps)
			if got != tc.want || summary == "" {
				t.Fatalf("Outcome = %s (%q), want %s", got, summary, tc.want)
			}
		})
	}
}

// TestSummary: every outcome's summary is one line naming the first
// deciding step's problem and remedy (issue 10 item 9c), and a propagating
// one what it may be and when the verdict is final (item 9b).
func TestSummary(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 30, 14, 5, 9, 0, time.UTC)
	expired := Step{Name: "token:graph", Status: StepFailed, ErrorCode: "AADSTS7000222",
		Message: "the client secret has expired.", Remedy: "create a new secret and update the integration"}
	lag := Step{Name: "token:graph", Status: StepPropagating, ErrorCode: "AADSTS7000215", Message: "Invalid client secret provided.",
		Remedy: "none yet", IfPersists: "the client secret is wrong: paste the secret's Value, not its ID"}
	for _, tc := range []struct {
		name  string
		steps []Step
		end   *time.Time
		want  string
	}{
		{"healthy", steps(StepPassed), nil, "all checks passed"},
		{"a failed sign-in", []Step{{Name: "secret", Status: StepPassed}, expired, {Name: "permissions", Status: StepSkipped}},
			nil, "Sign-in failed: the client secret has expired (AADSTS7000222) — create a new secret and update the integration"},
		{"two failures name the first", []Step{{Name: "permissions", Status: StepFailed, ErrorCode: "PERMISSION_MISSING",
			Message: "required permission(s) not granted: User.Read.All", Remedy: "grant admin consent"},
			{Name: "probe:graph-users", Status: StepFailed, ErrorCode: "Authorization_RequestDenied", Message: "Insufficient privileges."}},
			nil, "Permissions failed: required permission(s) not granted: User.Read.All (PERMISSION_MISSING) — grant admin consent; 1 more failed step"},
		{"the message already names the code", []Step{{Name: "secret", Status: StepFailed, ErrorCode: "X1", Message: "X1: gone"}},
			nil, "Secret failed: X1: gone"},
		{"propagating names the end and the real remedy", []Step{{Name: "secret", Status: StepPassed}, lag}, &end,
			"Not final until 14:05:09 UTC, a recent change may still be propagating: Sign-in: Invalid client secret provided (AADSTS7000215); " +
				"if it persists after then (re-checked automatically): the client secret is wrong: paste the secret's Value, not its ID"},
		{"blocked", []Step{{Name: "token:graph", Status: StepBlocked, ErrorCode: "AADSTS53003", Message: "Blocked by Conditional Access.",
			Remedy: "exclude the application from the policy"}},
			nil, "Blocked by a customer policy: Sign-in: Blocked by Conditional Access (AADSTS53003) — exclude the application from the policy"},
		{"a warning", []Step{{Name: "probe:defender-machines", Status: StepWarning, Message: "optional permission(s) not granted: Machine.Read.All",
			Remedy: "grant them for the full feature set, or ignore"}},
			nil, "Works, with 1 warning(s): Probe defender-machines: optional permission(s) not granted: Machine.Read.All — grant them for the full feature set, or ignore"},
		{"a sign-in Microsoft did not answer proves nothing", []Step{{Name: "secret", Status: StepPassed},
			{Name: "token:graph", Status: StepWarning, ErrorCode: "Timeout", Message: "no answer from Microsoft within 2s (--microsoft-timeout)"},
			{Name: "probe:graph-users", Status: StepSkipped, Message: "no token"}},
			nil, "Not verified this time, 1 warning(s): Sign-in: no answer from Microsoft within 2s (--microsoft-timeout) (Timeout); 1 step(s) not run"},
		{"skipped", []Step{{Name: "probe:graph-users", Status: StepSkipped, Message: "deadline reached"}},
			nil, "Incomplete, 1 step(s) not run: Probe graph-users: deadline reached"},
		{"control characters stay out", []Step{{Name: "token:defender", Status: StepFailed, Message: "bad\n\x1b[31mthing"}},
			nil, "Sign-in for defender failed: bad [31mthing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := OutcomeAt(tc.steps, tc.end)
			if got != tc.want {
				t.Fatalf("summary\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func probeNames(p plan) []Probe {
	var out []Probe
	for _, pp := range p.probes {
		out = append(out, pp.probe)
	}
	return out
}

func TestPlanFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		kind     integration.Kind
		features []integration.Feature
		apis     []API
		probes   []Probe
	}{
		{"defender", integration.KindDefender, nil, []API{APIGraph},
			[]Probe{ProbeGraphAlerts, ProbeGraphIncidents, ProbeGraphSignIns, ProbeGraphUsers}},
		{"defender with live response", integration.KindDefender, []integration.Feature{integration.FeatureLiveResponse},
			[]API{APIGraph, APIDefender},
			[]Probe{ProbeGraphAlerts, ProbeGraphIncidents, ProbeGraphSignIns, ProbeGraphUsers, ProbeDefenderMachines}},
		{"defender with every feature", integration.KindDefender,
			[]integration.Feature{integration.FeatureExchange, integration.FeatureCloudApps, integration.FeatureLiveResponse},
			[]API{APIGraph, APIDefender, APICloudApps, APIExchange},
			[]Probe{ProbeGraphAlerts, ProbeGraphIncidents, ProbeGraphSignIns, ProbeGraphUsers, ProbeDefenderMachines, ProbeCloudAppsAlerts}},
		{"sentinel", integration.KindSentinel, nil, []API{APILogAnalytics, APIARM, APIGraph},
			[]Probe{ProbeSentinelWorkspace, ProbeSentinelIncidents, ProbeLogAnalyticsQuery}}, // no probe of the retired legacy alerts API
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planFor(tc.kind, tc.features)
			if diff := cmp.Diff(tc.apis, p.apis); diff != "" {
				t.Errorf("apis (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.probes, probeNames(p)); diff != "" {
				t.Errorf("probes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProbeGate(t *testing.T) {
	t.Parallel()
	required := probePlan{probe: ProbeGraphAlerts, api: APIGraph, needs: "SecurityAlert.Read.All"}
	// No optional probe is planned today (the legacy alerts one is retired);
	// the gate still serves one.
	optional := probePlan{probe: Probe("graph-optional-example"), api: APIGraph, needs: "ThreatHunting.Read.All", optional: true}
	for _, tc := range []struct {
		name        string
		pp          probePlan
		roles       map[API][]string
		notLicensed map[API]bool
		unavailable map[API]bool
		deadline    bool
		skip        bool
		status      StepStatus
	}{
		{name: "runs", pp: required, roles: map[API][]string{APIGraph: {"SecurityAlert.Read.All"}}},
		{name: "required runs even without the role (the probe proves it)", pp: required, roles: map[API][]string{APIGraph: {}}},
		{name: "not licensed", pp: required, notLicensed: map[API]bool{APIGraph: true}, unavailable: map[API]bool{APIGraph: true},
			skip: true, status: StepUnavailable},
		{name: "no token", pp: required, unavailable: map[API]bool{APIGraph: true}, skip: true, status: StepSkipped},
		{name: "optional not granted", pp: optional, roles: map[API][]string{APIGraph: {"User.Read.All"}}, skip: true, status: StepSkipped},
		{name: "optional granted", pp: optional, roles: map[API][]string{APIGraph: {"ThreatHunting.Read.All"}}},
		{name: "deadline", pp: required, roles: map[API][]string{APIGraph: {}}, deadline: true, skip: true, status: StepSkipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, skip := probeGate(tc.pp, tc.roles, tc.notLicensed, tc.unavailable, tc.deadline)
			if skip != tc.skip || (skip && (st.Status != tc.status || st.Name != "probe:"+string(tc.pp.probe))) {
				t.Fatalf("probeGate = %+v, %v; want skip %v with %s", st, skip, tc.skip, tc.status)
			}
		})
	}
}

// graphRequired are the Graph permissions a defender integration needs.
var graphRequired = []string{"AuditLog.Read.All", "SecurityAlert.Read.All", "SecurityIncident.Read.All", "User.Read.All"}

func TestPermissionsFromRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		features    []integration.Feature
		roles       map[API][]string
		unavailable map[API]bool
		want        Permissions
	}{
		{"everything granted", []integration.Feature{}, map[API][]string{APIGraph: append([]string{"ThreatHunting.Read.All"}, graphRequired...)},
			nil, Permissions{Source: SourceTokenRoles, Granted: append(slices.Clone(graphRequired), "ThreatHunting.Read.All")}},
		{"missing required and optional, one extra", []integration.Feature{}, map[API][]string{APIGraph: {"AuditLog.Read.All", "Mail.Read"}}, nil,
			Permissions{Source: SourceTokenRoles, Granted: []string{"AuditLog.Read.All", "Mail.Read"},
				MissingRequired: []string{"SecurityAlert.Read.All", "SecurityIncident.Read.All", "User.Read.All"},
				MissingOptional: []string{"ThreatHunting.Read.All"}, Extra: []string{"Mail.Read"}}},
		{"an API without a token is not judged", []integration.Feature{integration.FeatureLiveResponse},
			map[API][]string{APIGraph: append([]string{"ThreatHunting.Read.All"}, graphRequired...)},
			map[API]bool{APIDefender: true},
			Permissions{Source: SourceTokenRoles, Granted: append(slices.Clone(graphRequired), "ThreatHunting.Read.All")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := permissionsFromRoles(testCatalog, integration.KindDefender, tc.features, tc.roles, tc.unavailable)
			slices.Sort(tc.want.Granted)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermissionsFromGrants(t *testing.T) {
	t.Parallel()
	grant := func(app string, values ...string) []Grant {
		var out []Grant
		for _, v := range values {
			out = append(out, Grant{ResourceAppID: app, Value: v})
		}
		return out
	}
	upper := "00000003-0000-0000-C000-000000000000" // Entra's casing varies
	for _, tc := range []struct {
		name   string
		grants []Grant
		want   Permissions
	}{
		{"nothing granted", []Grant{}, Permissions{Source: SourceEntraAssignments, MissingRequired: graphRequired,
			MissingOptional: []string{"ThreatHunting.Read.All"}}},
		{"all required, duplicates and case ignored", append(grant(upper, graphRequired...), grant(catalog.GraphAppID, "User.Read.All")...),
			Permissions{Source: SourceEntraAssignments, Granted: graphRequired, MissingOptional: []string{"ThreatHunting.Read.All"}}},
		{"a role on another API is extra", append(grant(catalog.GraphAppID, append([]string{"ThreatHunting.Read.All"}, graphRequired...)...),
			grant(catalog.DefenderATPAppID, "Machine.Read.All")...),
			Permissions{Source: SourceEntraAssignments, Granted: append([]string{"Machine.Read.All"}, append(slices.Clone(graphRequired), "ThreatHunting.Read.All")...),
				Extra: []string{"Machine.Read.All"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := permissionsFromGrants(testCatalog, integration.KindDefender, []integration.Feature{}, tc.grants)
			slices.Sort(tc.want.Granted)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermissionStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		p        Permissions
		settling bool
		want     StepStatus
	}{
		{"all granted", Permissions{Granted: []string{"a"}}, false, StepPassed},
		{"extra only", Permissions{Granted: []string{"a"}, Extra: []string{"a"}}, false, StepPassed},
		{"optional missing", Permissions{MissingOptional: []string{"o"}}, false, StepWarning},
		{"required missing", Permissions{MissingRequired: []string{"r"}, MissingOptional: []string{"o"}}, false, StepFailed},
		{"required missing right after a change", Permissions{MissingRequired: []string{"r"}}, true, StepPropagating},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var end *time.Time
			if tc.settling {
				e := time.Date(2026, 11, 30, 14, 5, 0, 0, time.UTC)
				end = &e
			}
			got := permissionStep(tc.p, end)
			if got.Status != tc.want {
				t.Fatalf("status %s, want %s (%+v)", got.Status, tc.want, got)
			}
			if tc.settling && (got.IfPersists == "" || !strings.Contains(got.Remedy, "if this persists after 14:05:00 UTC: add the application permission")) {
				t.Fatalf("propagating permissions hide their remedy: %+v", got)
			}
		})
	}
}

func TestFailStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		err      error
		settling bool
		want     StepStatus
	}{
		{"not licensed", &mserr.Error{Class: mserr.ClassNotLicensed}, false, StepUnavailable},
		{"policy", &mserr.Error{Class: mserr.ClassPolicyBlocked}, true, StepBlocked},
		{"invalid secret, settled", &mserr.Error{Class: mserr.ClassInvalidSecret}, false, StepFailed},
		{"invalid secret (AADSTS7000215, lag) while settling", &mserr.Error{Class: mserr.ClassInvalidSecret, Lag: true,
			Remedy: "create a new client secret and update the integration"}, true, StepPropagating},
		{"secret missing (AADSTS7000216, not lag) while settling", &mserr.Error{Class: mserr.ClassInvalidSecret}, true, StepFailed},
		{"object not replicated while settling", &mserr.Error{Class: mserr.ClassNotReplicated}, true, StepPropagating},
		{"throttled", &mserr.Error{Class: mserr.ClassThrottled}, false, StepWarning},
		{"transient", &mserr.Error{Class: mserr.ClassTransient}, true, StepWarning},
		{"unclassified", errors.New("boom"), false, StepFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st Step
			var end *time.Time
			if tc.settling {
				e := time.Date(2026, 11, 30, 14, 5, 0, 0, time.UTC)
				end = &e
			}
			failStep(&st, tc.err, end)
			if st.Status != tc.want {
				t.Fatalf("status %s, want %s", st.Status, tc.want)
			}
			// A propagating step says what it may be and when the verdict
			// is final (issue 10 item 9b).
			if st.Status == StepPropagating && (st.IfPersists == "" || !strings.Contains(st.Remedy, "if this persists after 14:05:00 UTC: "+st.IfPersists)) {
				t.Fatalf("propagating step hides its remedy: %+v", st)
			}
		})
	}
}

func TestExpiryStep(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name string
		end  *time.Time
		want StepStatus
		soon bool
	}{
		{"unknown", nil, StepPassed, false},
		{"far", at(90 * day), StepPassed, false},
		{"just outside the window", at(30*day + time.Second), StepPassed, false},
		{"inside the window", at(29 * day), StepWarning, true},
		{"expires now", at(0), StepFailed, false},
		{"expired", at(-day), StepFailed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, soon := expiryStep(tc.end, now, 30*day)
			if st.Status != tc.want || soon != tc.soon || st.Name != "expiry" {
				t.Fatalf("expiryStep = %+v, soon %v; want %s, soon %v", st, soon, tc.want, tc.soon)
			}
		})
	}
}

func TestSettleEndAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-time.Hour)
	for _, tc := range []struct {
		name string
		in   integration.Integration
		want bool
	}{
		{"old integration, old credential", integration.Integration{CreateTime: old,
			Credentials: []integration.Credential{{State: integration.CredentialActive, CreateTime: old}}}, false},
		{"new integration", integration.Integration{CreateTime: now.Add(-time.Minute)}, true},
		{"new active credential", integration.Integration{CreateTime: old,
			Credentials: []integration.Credential{{State: integration.CredentialActive, CreateTime: now.Add(-time.Minute)}}}, true},
		{"a new credential that is not active does not count", integration.Integration{CreateTime: old,
			Credentials: []integration.Credential{{State: integration.CredentialActive, CreateTime: old},
				{State: integration.CredentialPending, CreateTime: now}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := settleEndAt(tc.in, now, 5*time.Minute)
			if (got != nil) != tc.want {
				t.Fatalf("settleEndAt = %v, want settling %v", got, tc.want)
			}
			if got != nil && !got.Equal(now.Add(4*time.Minute)) {
				t.Fatalf("settle window ends %v, want 4 minutes from now", got)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	cred := uuid.New()
	warned := time.Now()
	in := func(state integration.State, version int64, warnedAt *time.Time) integration.Integration {
		return integration.Integration{State: state, Version: version, Mode: integration.ModeCustomerManaged,
			Credentials: []integration.Credential{{ID: cred, State: integration.CredentialActive, ExpiryWarnTime: warnedAt}}}
	}
	provisioned := func(state integration.State, version int64) integration.Integration {
		p := in(state, version, nil)
		p.Mode = integration.ModeProvisioned
		return p
	}
	check := func(outcome integration.State, trigger string, version int64, soon bool) Check {
		return Check{Outcome: outcome, Trigger: trigger, IntegrationVersion: version, ExpiringSoon: soon, Credential: cred}
	}
	for _, tc := range []struct {
		name string
		c    Check
		in   integration.Integration
		want decision
	}{
		{"unchanged scheduled", check(integration.StateHealthy, TriggerSchedule, 3, false), in(integration.StateHealthy, 3, nil), decision{}},
		{"stale: the integration changed while the check ran", check(integration.StateBroken, TriggerAPI, 3, true),
			in(integration.StateHealthy, 4, nil), decision{stale: true}},
		{"state change", check(integration.StateBroken, TriggerSchedule, 3, false), in(integration.StateHealthy, 3, nil),
			decision{events: []string{event.StateChanged}}},
		{"on demand is audited", check(integration.StateHealthy, TriggerAPI, 3, false), in(integration.StateHealthy, 3, nil),
			decision{audit: true}},
		{"first warning for the credential", check(integration.StateDegraded, TriggerSchedule, 3, true), in(integration.StateDegraded, 3, nil),
			decision{warn: true, events: []string{event.CredentialExpiring}}},
		{"already warned", check(integration.StateDegraded, TriggerSchedule, 3, true), in(integration.StateDegraded, 3, &warned), decision{}},
		{"change and warning", check(integration.StateDegraded, TriggerSchedule, 3, true), in(integration.StateHealthy, 3, nil),
			decision{warn: true, events: []string{event.StateChanged, event.CredentialExpiring}}},
		{"provisioned: renews itself, nothing announced", check(integration.StateDegraded, TriggerSchedule, 3, true),
			provisioned(integration.StateDegraded, 3), decision{}},
		{"deprovisioning: the operation owns the state", check(integration.StateBroken, TriggerAPI, 3, true),
			in(integration.StateDeprovisioning, 3, nil), decision{stale: true}},
		{"no version: never stale", check(integration.StateHealthy, TriggerAPI, 0, false), in(integration.StateHealthy, 9, nil),
			decision{audit: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, decide(tc.c, tc.in), cmp.AllowUnexported(decision{})); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpectation(t *testing.T) {
	t.Parallel()
	cred := uuid.New()
	warned := time.Now()
	end := time.Now().Add(300 * 24 * time.Hour)
	loaded := func(state integration.State, warnedAt *time.Time) integration.Integration {
		return integration.Integration{State: state, Version: 5, Mode: integration.ModeCustomerManaged,
			Credentials: []integration.Credential{{ID: cred, State: integration.CredentialActive, ExpiryWarnTime: warnedAt, EndTime: &end}}}
	}
	for _, tc := range []struct {
		name       string
		c          Check
		in         integration.Integration
		ok         bool
		wantWarned uuid.UUID
		wantEvent  uuid.UUID // the active credential expected for the state-change event
	}{
		{"same outcome, scheduled", Check{Outcome: integration.StateHealthy, Trigger: TriggerSchedule, IntegrationVersion: 5},
			loaded(integration.StateHealthy, nil), true, uuid.Nil, uuid.Nil},
		{"on demand", Check{Outcome: integration.StateHealthy, Trigger: TriggerAPI, IntegrationVersion: 5},
			loaded(integration.StateHealthy, nil), false, uuid.Nil, uuid.Nil},
		{"new outcome: the state change, with the active credential its event carries", Check{Outcome: integration.StateBroken,
			Trigger: TriggerSchedule, IntegrationVersion: 5}, loaded(integration.StateHealthy, nil), true, uuid.Nil, cred},
		{"new outcome, no active credential", Check{Outcome: integration.StateBroken, Trigger: TriggerSchedule, IntegrationVersion: 5},
			integration.Integration{State: integration.StateUnverified, Version: 5}, true, uuid.Nil, uuid.Nil},
		{"propagating: its settle re-check", Check{Outcome: integration.StatePropagating, Trigger: TriggerSchedule, IntegrationVersion: 5},
			loaded(integration.StateHealthy, nil), false, uuid.Nil, uuid.Nil},
		{"being deprovisioned: history only", Check{Outcome: integration.StateHealthy, Trigger: TriggerSchedule, IntegrationVersion: 5},
			loaded(integration.StateDeprovisioning, nil), false, uuid.Nil, uuid.Nil},
		{"expiry date to correct", Check{Outcome: integration.StateHealthy, Trigger: TriggerSchedule, IntegrationVersion: 5,
			ExpiryMismatch: &ExpiryMismatch{Credential: cred, Entra: end.Add(time.Hour)}}, loaded(integration.StateHealthy, nil), false, uuid.Nil, uuid.Nil},
		{"no version", Check{Outcome: integration.StateHealthy, Trigger: TriggerSchedule},
			loaded(integration.StateHealthy, nil), false, uuid.Nil, uuid.Nil},
		{"expiring, not warned yet", Check{Outcome: integration.StateDegraded, Trigger: TriggerSchedule, IntegrationVersion: 5, ExpiringSoon: true, Credential: cred},
			loaded(integration.StateDegraded, nil), false, uuid.Nil, uuid.Nil},
		{"expiring, warned: the store re-checks the warning", Check{Outcome: integration.StateDegraded, Trigger: TriggerSchedule, IntegrationVersion: 5, ExpiringSoon: true, Credential: cred},
			loaded(integration.StateDegraded, &warned), true, cred, uuid.Nil},
		{"expiring, provisioned: nothing to announce", Check{Outcome: integration.StateDegraded, Trigger: TriggerSchedule, IntegrationVersion: 5, ExpiringSoon: true, Credential: cred},
			func() integration.Integration {
				in := loaded(integration.StateDegraded, nil)
				in.Mode = integration.ModeProvisioned
				return in
			}(), true, uuid.Nil, uuid.Nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := expectation(tc.c, tc.in)
			if ok != tc.ok || (ok && (e.Version != tc.c.IntegrationVersion || e.State != tc.in.State ||
				e.WarnedCredential != tc.wantWarned || e.EventCredential != tc.wantEvent)) {
				t.Fatalf("expectation = %+v, %v; want ok %v, warned credential %v, event credential %v", e, ok, tc.ok, tc.wantWarned, tc.wantEvent)
			}
			if ok && e.EventCredential != uuid.Nil && (e.EventCredentialEnd == nil || !e.EventCredentialEnd.Equal(end)) {
				t.Fatalf("event credential end = %v, want %v", e.EventCredentialEnd, end)
			}
		})
	}
}

func TestDaysLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		end  time.Time
		want int
	}{
		{now.Add(30 * 24 * time.Hour), 30},
		{now.Add(30*24*time.Hour - time.Minute), 29},
		{now.Add(time.Hour), 0},
		{now.Add(-25 * time.Hour), -1},
	} {
		if got := daysLeft(tc.end, now); got != tc.want {
			t.Errorf("daysLeft(%v) = %d, want %d", tc.end, got, tc.want)
		}
	}
}

func TestTrialOf(t *testing.T) {
	t.Parallel()
	passed := func(n string) Step { return Step{Name: n, Status: StepPassed} }
	for _, tc := range []struct {
		name     string
		c        Check
		verified bool
		refused  bool
		step     string
	}{
		{"healthy", Check{Outcome: integration.StateHealthy, Steps: []Step{passed("secret"), passed("token:graph")}}, true, false, ""},
		{"degraded by an optional permission", Check{Outcome: integration.StateDegraded, Steps: []Step{passed("secret"), passed("token:graph"),
			{Name: "permissions", Status: StepWarning}}}, true, false, ""},
		{"degraded because Microsoft did not answer the token request: not proven", Check{Outcome: integration.StateDegraded,
			Steps: []Step{passed("secret"), {Name: "token:graph", Status: StepWarning}}}, false, false, "token:graph"},
		{"Vault did not answer: not proven", Check{Outcome: integration.StateDegraded,
			Steps: []Step{{Name: "secret", Status: StepWarning}}}, false, false, "secret"},
		{"wrong secret", Check{Outcome: integration.StateBroken, Steps: []Step{passed("secret"),
			{Name: "token:graph", Status: StepFailed, ErrorCode: "AADSTS7000215"}}}, false, true, "token:graph"},
		{"wrong secret or lag", Check{Outcome: integration.StatePropagating, Steps: []Step{passed("secret"),
			{Name: "token:graph", Status: StepPropagating, ErrorCode: "AADSTS7000215"}}}, false, true, "token:graph"},
		{"permission missing", Check{Outcome: integration.StateBroken, Steps: []Step{passed("secret"), passed("token:graph"),
			{Name: "permissions", Status: StepFailed, ErrorCode: "PERMISSION_MISSING"}}}, false, false, "permissions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := trialOf(tc.c, nil)
			if tr.Verified() != tc.verified || tr.CredentialRefused != tc.refused || tr.Step != tc.step {
				t.Fatalf("trialOf = %+v; want verified %v, refused %v, step %q", tr, tc.verified, tc.refused, tc.step)
			}
		})
	}
}
