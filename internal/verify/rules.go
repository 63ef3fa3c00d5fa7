package verify

// The pure rules of a check: what to call (the plan), how a Microsoft
// error becomes a step, the permission diff, the expiry window and the
// outcome. No I/O here: each is a function of its inputs, tested
// table-driven in rules_test.go.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// plan is what an integration uses: the APIs it needs tokens for and the
// probes that prove them.
type plan struct {
	apis   []API
	probes []probePlan
}

type probePlan struct {
	probe    Probe
	api      API
	needs    string // permission value the probe exercises ("" for Azure RBAC)
	optional bool   // run only when the permission is granted
}

var resourceOf = map[API]string{
	APIGraph:        catalog.GraphAppID,
	APIDefender:     catalog.DefenderATPAppID,
	APICloudApps:    catalog.CloudAppSecAppID,
	APIExchange:     catalog.ExchangeAppID,
	APILogAnalytics: catalog.LogAnalyticsAppID,
}

func planFor(kind integration.Kind, features []integration.Feature) plan {
	has := func(f integration.Feature) bool { return slices.Contains(features, f) }
	if kind == integration.KindSentinel {
		return plan{
			apis: []API{APILogAnalytics, APIARM, APIGraph},
			probes: []probePlan{
				{probe: ProbeSentinelWorkspace, api: APIARM},
				{probe: ProbeSentinelIncidents, api: APIARM}, // the Sentinel API (azureroles.go)
				{probe: ProbeLogAnalyticsQuery, api: APILogAnalytics, needs: "Data.Read"},
				// No probe of Graph's legacy /security/alerts (SecurityEvents.Read.All):
				// Microsoft retired it on 2026-08-31 (it returns no data), so it
				// proves nothing either way (internal/catalog).
			},
		}
	}
	p := plan{
		apis: []API{APIGraph},
		probes: []probePlan{
			{probe: ProbeGraphAlerts, api: APIGraph, needs: "SecurityAlert.Read.All"},
			{probe: ProbeGraphIncidents, api: APIGraph, needs: "SecurityIncident.Read.All"},
			{probe: ProbeGraphSignIns, api: APIGraph, needs: "AuditLog.Read.All"},
			{probe: ProbeGraphUsers, api: APIGraph, needs: "User.Read.All"},
		},
	}
	if has(integration.FeatureLiveResponse) {
		p.apis = append(p.apis, APIDefender)
		p.probes = append(p.probes, probePlan{probe: ProbeDefenderMachines, api: APIDefender, needs: "Machine.Read.All"})
	}
	if has(integration.FeatureCloudApps) {
		p.apis = append(p.apis, APICloudApps)
		p.probes = append(p.probes, probePlan{probe: ProbeCloudAppsAlerts, api: APICloudApps, needs: "investigation.read"})
	}
	if has(integration.FeatureExchange) {
		p.apis = append(p.apis, APIExchange)
	}
	return p
}

// isCredentialFailure reports errors after which no other call can work.
func isCredentialFailure(err error) bool { return mserr.SignInFailed(err) }

// failStep fills a failed step from a Microsoft error. settleEnd is when
// the settle window after the integration's last change ends (nil: not
// settling): an answer Microsoft documents as replication lag is then
// propagating, with the remedy it would have after that time kept in
// IfPersists and named in Remedy, so the admin watching an onboarding sees
// what it may be and when the verdict is final.
func failStep(step *Step, err error, settleEnd *time.Time) {
	var e *mserr.Error
	if !errors.As(err, &e) {
		step.Status, step.Message = StepFailed, "unexpected error"
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			step.Status, step.Message = StepSkipped, "deadline reached"
		}
		return
	}
	step.ErrorCode, step.Message, step.Remedy = e.Code, e.Message, e.Remedy
	if step.ErrorCode == "" && e.Status != 0 {
		step.ErrorCode = fmt.Sprintf("HTTP %d", e.Status)
	}
	switch {
	case e.Class == mserr.ClassNotLicensed:
		step.Status = StepUnavailable
	case e.Class == mserr.ClassPolicyBlocked:
		step.Status = StepBlocked
	case settleEnd != nil && mserr.IsReplicationLag(e): // the one definition of lag
		ifPersists := e.Remedy
		if ifPersists == "" {
			ifPersists = "the error is real: see the error code in docs/microsoft-errors.md"
		}
		propagate(step, "a recent change may still be replicating in Microsoft's directory", ifPersists, *settleEnd)
	case e.Class == mserr.ClassTransient || e.Class == mserr.ClassThrottled:
		step.Status = StepWarning
		step.Message = "Microsoft did not answer conclusively: " + e.Message
	default:
		step.Status = StepFailed
	}
}

// propagate makes step propagating until the settle window ends at end:
// its remedy says to wait (why) and when the verdict is final, and
// ifPersists (also kept in IfPersists) is what to do if it persists.
func propagate(step *Step, why, ifPersists string, end time.Time) {
	step.Status = StepPropagating
	step.IfPersists = ifPersists
	step.Remedy = fmt.Sprintf("none yet: %s, and the check re-runs by itself at %s; if this persists after %s: %s",
		why, clockTime(end), clockTime(end), ifPersists)
}

// clockTime formats a settle window's end for one line: "14:05:09 UTC".
func clockTime(t time.Time) string { return t.UTC().Format("15:04:05 UTC") }

// skipRest marks the steps that cannot run.
func skipRest(c *Check, p plan, why string) {
	c.add(Step{Name: "permissions", Status: StepSkipped, Message: why})
	for _, pp := range p.probes {
		c.add(Step{Name: "probe:" + string(pp.probe), Status: StepSkipped, Message: why})
	}
}

// permissions compares the tokens' roles with the catalog for the
// integration's kind and features.
func permissionsFromRoles(cat *catalog.Catalog, kind integration.Kind, features []integration.Feature, roles map[API][]string, unavailable map[API]bool) Permissions {
	p := Permissions{Source: SourceTokenRoles}
	want := map[string]catalog.Entry{}
	for _, e := range cat.For(kind, features) {
		if e.Type == catalog.TypeApplication {
			want[e.ResourceAppID+"/"+e.Value] = e
		}
	}
	granted := map[string]bool{}
	for api, rs := range roles {
		for _, r := range rs {
			key := resourceOf[api] + "/" + r
			granted[key] = true
			p.Granted = append(p.Granted, r)
			if _, ok := want[key]; !ok {
				p.Extra = append(p.Extra, r)
			}
		}
	}
	apiOf := map[string]API{}
	for api, id := range resourceOf {
		apiOf[id] = api
	}
	for key, e := range want {
		if granted[key] || unavailable[apiOf[e.ResourceAppID]] {
			continue
		}
		if _, fetched := roles[apiOf[e.ResourceAppID]]; !fetched {
			continue // no token for that API was needed or obtained
		}
		if e.Requirement == catalog.Required {
			p.MissingRequired = append(p.MissingRequired, e.Value)
		} else {
			p.MissingOptional = append(p.MissingOptional, e.Value)
		}
	}
	for _, l := range [][]string{p.Granted, p.Extra, p.MissingRequired, p.MissingOptional} {
		sort.Strings(l)
	}
	return p
}

// permissionsFromGrants compares Entra's app role assignments with the
// catalog: the authoritative view (what admin consent granted).
func permissionsFromGrants(cat *catalog.Catalog, kind integration.Kind, features []integration.Feature, grants []Grant) Permissions {
	p := Permissions{Source: SourceEntraAssignments}
	want := map[string]catalog.Entry{}
	for _, e := range cat.For(kind, features) {
		if e.Type == catalog.TypeApplication {
			want[strings.ToLower(e.ResourceAppID)+"/"+e.Value] = e
		}
	}
	granted := map[string]bool{}
	for _, g := range grants {
		key := strings.ToLower(g.ResourceAppID) + "/" + g.Value
		if granted[key] {
			continue
		}
		granted[key] = true
		p.Granted = append(p.Granted, g.Value)
		if _, ok := want[key]; !ok {
			p.Extra = append(p.Extra, g.Value)
		}
	}
	for key, e := range want {
		if granted[key] {
			continue
		}
		if e.Requirement == catalog.Required {
			p.MissingRequired = append(p.MissingRequired, e.Value)
		} else {
			p.MissingOptional = append(p.MissingOptional, e.Value)
		}
	}
	for _, l := range [][]string{p.Granted, p.Extra, p.MissingRequired, p.MissingOptional} {
		sort.Strings(l)
	}
	return p
}

func permissionStep(p Permissions, settleEnd *time.Time) Step {
	step := Step{Name: "permissions", Status: StepPassed, Message: fmt.Sprintf("%d granted (from %s)", len(p.Granted), p.Source)}
	if len(p.Extra) > 0 {
		step.Message += "; not needed: " + strings.Join(p.Extra, ", ")
	}
	switch {
	case len(p.MissingRequired) > 0:
		step.Status = StepFailed
		step.ErrorCode = "PERMISSION_MISSING"
		step.Message = "required permission(s) not granted: " + strings.Join(p.MissingRequired, ", ")
		step.Remedy = "add the application permission(s) in Entra (API permissions) and grant admin consent"
		if settleEnd != nil {
			propagate(&step, "consent granted just now reaches Entra's reads and the tokens' roles within minutes", step.Remedy, *settleEnd)
		}
	case len(p.MissingOptional) > 0:
		step.Status = StepWarning
		step.Message = "optional permission(s) not granted: " + strings.Join(p.MissingOptional, ", ")
		step.Remedy = "grant them for the full feature set, or ignore"
	}
	return step
}

// probeGate decides whether a planned probe runs: it returns the step to
// record instead (and true) when the product is not licensed, there is no
// token for its API, its optional permission is not among the granted
// roles, or the deadline has passed.
func probeGate(pp probePlan, roles map[API][]string, notLicensed, unavailable map[API]bool, deadline bool) (Step, bool) {
	name := "probe:" + string(pp.probe)
	switch {
	case notLicensed[pp.api]:
		return Step{Name: name, Status: StepUnavailable, Message: "product not licensed or onboarded in the tenant"}, true
	case unavailable[pp.api]:
		return Step{Name: name, Status: StepSkipped, Message: "no token for " + string(pp.api)}, true
	case pp.optional && !slices.Contains(roles[pp.api], pp.needs):
		return Step{Name: name, Status: StepSkipped, Message: "optional permission " + pp.needs + " not granted"}, true
	case deadline:
		return Step{Name: name, Status: StepSkipped, Message: "deadline reached"}, true
	}
	return Step{}, false
}

// settleEndAt returns when the settle window after in's last change
// (created, or its active credential stored) ends, or nil when it ended at
// or before now: replication lag is expected until then.
func settleEndAt(in integration.Integration, now time.Time, window time.Duration) *time.Time {
	last := in.CreateTime
	if a, ok := in.Active(); ok && a.CreateTime.After(last) {
		last = a.CreateTime
	}
	return settleEndFrom(last, now, window)
}

// settleEndFrom is the end of the settle window after a change at last,
// or nil when it ended at or before now.
func settleEndFrom(last, now time.Time, window time.Duration) *time.Time {
	end := last.Add(window).Truncate(time.Microsecond)
	if !now.Before(end) {
		return nil
	}
	return &end
}

// expiryStep judges a credential's end date against the warning window;
// soon reports that it is inside the window (and not yet expired).
func expiryStep(end *time.Time, now time.Time, window time.Duration) (step Step, soon bool) {
	step = Step{Name: "expiry", Status: StepPassed}
	switch {
	case end == nil:
		step.Message = "expiry unknown: set credential.expire_time to be warned before the secret expires"
	case !now.Before(*end):
		step.Status, step.ErrorCode = StepFailed, "CREDENTIAL_EXPIRED"
		step.Message = "the client secret expired on " + end.UTC().Format(time.RFC3339)
		step.Remedy = "rotate: create a new client secret and update the integration"
	case end.Sub(now) < window:
		step.Status, step.ErrorCode = StepWarning, "CREDENTIAL_EXPIRING"
		step.Message = fmt.Sprintf("the client secret expires in %d day(s), on %s", int(end.Sub(now).Hours()/24), end.UTC().Format(time.RFC3339))
		step.Remedy = "rotate before it expires"
		soon = true
	default:
		step.Message = fmt.Sprintf("expires in %d days", int(end.Sub(now).Hours()/24))
	}
	return step, soon
}

// Outcome decides a check's outcome and summary from its steps: a blocked
// step (customer policy) wins, then any failure (broken), then replication
// lag (propagating), then warnings (degraded). Unavailable steps (a product
// not licensed in the tenant) do not count against it; skipped ones make a
// healthy check degraded (incomplete).
func Outcome(steps []Step) (integration.State, string) { return OutcomeAt(steps, nil) }

// OutcomeAt is Outcome for a check whose settle window ends at settleEnd
// (nil: none). The summary is one line a customer admin can act on: the
// first step that decided the outcome, its problem (Microsoft's message
// and error code) and its remedy; for a propagating check, what the
// failure may be and when the verdict is final.
func OutcomeAt(steps []Step, settleEnd *time.Time) (integration.State, string) {
	var failed, propagating, warning, blocked, skipped []Step
	for _, s := range steps {
		switch s.Status {
		case StepFailed:
			failed = append(failed, s)
		case StepPropagating:
			propagating = append(propagating, s)
		case StepWarning:
			warning = append(warning, s)
		case StepBlocked:
			blocked = append(blocked, s)
		case StepSkipped:
			skipped = append(skipped, s)
		}
	}
	switch {
	case len(blocked) > 0:
		return integration.StateBlockedByPolicy, "Blocked by a customer policy: " + stepLabel(blocked[0].Name) + ": " + problem(blocked[0], blocked[0].Remedy)
	case len(failed) > 0:
		return integration.StateBroken, stepLabel(failed[0].Name) + " failed: " + problem(failed[0], failed[0].Remedy) + more(len(failed), "failed step")
	case len(propagating) > 0:
		s := propagating[0]
		head := "Not final yet"
		tail := "the next check should tell"
		if settleEnd != nil {
			head = "Not final until " + clockTime(*settleEnd)
			tail = "if it persists after then (re-checked automatically)"
		}
		line := head + ", a recent change may still be propagating: " + stepLabel(s.Name) + ": " + problem(s, "")
		if s.IfPersists != "" {
			return integration.StatePropagating, line + "; " + tail + ": " + strings.TrimRight(oneLine(s.IfPersists), ". ")
		}
		return integration.StatePropagating, line
	case len(warning) > 0 && (len(skipped) > 0 || strings.HasPrefix(warning[0].Name, "token")):
		// A warned sign-in (Microsoft did not answer conclusively) proves
		// nothing works: the check could not tell this time.
		return integration.StateDegraded, fmt.Sprintf("Not verified this time, %d warning(s): %s: %s", len(warning), stepLabel(warning[0].Name), problem(warning[0], warning[0].Remedy)) +
			notRun(len(skipped))
	case len(warning) > 0:
		return integration.StateDegraded, fmt.Sprintf("Works, with %d warning(s): %s: %s", len(warning), stepLabel(warning[0].Name), problem(warning[0], warning[0].Remedy))
	case len(skipped) > 0:
		return integration.StateDegraded, fmt.Sprintf("Incomplete, %d step(s) not run: %s: %s", len(skipped), stepLabel(skipped[0].Name), problem(skipped[0], ""))
	}
	return integration.StateHealthy, "all checks passed"
}

// stepLabel names a step for a summary: "Sign-in", "Permissions",
// "Probe graph-users", ...
func stepLabel(name string) string {
	kind, arg, _ := strings.Cut(name, ":")
	switch kind {
	case "secret":
		return "Secret"
	case "token":
		if arg == "" || arg == string(APIGraph) {
			return "Sign-in"
		}
		return "Sign-in for " + arg
	case "permissions":
		return "Permissions"
	case "probe":
		return "Probe " + arg
	case "expiry":
		return "Expiry"
	}
	if name == "" {
		return "A step"
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// problem is a step's message with its error code (unless the message
// already names it) and, when given, " — " and the remedy: one line.
func problem(s Step, remedy string) string {
	msg := strings.TrimRight(oneLine(s.Message), ". ")
	if msg == "" {
		msg = string(s.Status)
	}
	if s.ErrorCode != "" && !strings.Contains(msg, s.ErrorCode) {
		msg += " (" + s.ErrorCode + ")"
	}
	if r := strings.TrimRight(oneLine(remedy), ". "); r != "" {
		msg += " — " + r
	}
	return msg
}

// more notes the other steps of the same kind: "; 2 more failed steps".
// notRun counts the steps a check did not run, for a summary's tail.
func notRun(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d step(s) not run", n)
}

func more(n int, what string) string {
	switch n {
	case 0, 1:
		return ""
	case 2:
		return "; 1 more " + what
	}
	return fmt.Sprintf("; %d more %ss", n-1, what)
}

// oneLine keeps text on one line: control characters become spaces, runs
// of spaces collapse.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// APIsFor returns the APIs a check of an integration of kind with
// features gets tokens for: the integration's APIs (internal/token issues
// tokens for these only).
func APIsFor(kind integration.Kind, features []integration.Feature) []API {
	return slices.Clone(planFor(kind, features).apis)
}
