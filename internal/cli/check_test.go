package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
)

const checkedName = "organizations/o1/tenants/t1/integrations/i1"

// checkHarness is a harness holding integration i1 of tenant t1.
func checkHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.srv.integrations = []*dzconnectv1.Integration{{
		Name: checkedName, Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER,
		State: dzconnectv1.IntegrationState_INTEGRATION_STATE_UNVERIFIED,
	}}
	h.srv.nextCheck = map[string]*dzconnectv1.Check{}
	return h
}

func ms(n int) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Millisecond) }

// brokenCheck exercises every step status, error codes, remedies and a full
// permission report.
func brokenCheck() *dzconnectv1.Check {
	return &dzconnectv1.Check{
		Outcome:   dzconnectv1.IntegrationState_INTEGRATION_STATE_BROKEN,
		Trigger:   "api",
		StartTime: ts("2026-11-26T04:00:00Z"),
		EndTime:   ts("2026-11-26T04:00:01Z"),
		Summary:   "Entra rejected the client secret.",
		Steps: []*dzconnectv1.CheckStep{
			{Name: "secret", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PASSED, Duration: ms(3)},
			{
				Name: "token:graph", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_FAILED, Duration: ms(412),
				ErrorCode: "AADSTS7000215", Message: "Invalid client secret provided.",
				Remedy: "Create a new client secret in Entra and store it with dzctl integration update --client-secret-file -.",
			},
			{Name: "permissions", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_WARNING, Duration: ms(1), Message: "optional\npermission\x1b[31m missing"},
			{Name: "probe:alerts", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_SKIPPED, Message: "token failed"},
			{Name: "probe:mde", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PROPAGATING, Duration: ms(1250)},
			{Name: "probe:cloudapps", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_UNAVAILABLE, Duration: ms(80)},
			{
				Name: "probe:exchange", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_BLOCKED, Duration: ms(95),
				ErrorCode: "AADSTS53003", Message: "Blocked by Conditional Access.", Remedy: "Exclude the app from the policy.",
			},
			{Name: "expiry", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PASSED, Duration: ms(0)},
		},
		Permissions: &dzconnectv1.PermissionReport{
			Source:          "token-roles",
			Granted:         []string{"SecurityAlert.Read.All", "Directory.ReadWrite.All"},
			MissingRequired: []string{"SecurityIncident.Read.All"},
			MissingOptional: []string{"Machine.LiveResponse", "Machine.Isolate"},
			Extra:           []string{"Directory.ReadWrite.All"},
		},
	}
}

func TestCheckReport(t *testing.T) {
	h := checkHarness(t)
	h.srv.nextCheck[checkedName] = brokenCheck()
	r := h.run("", "check", checkedName)
	if cli.ExitUnhealthy != 3 || r.code != cli.ExitUnhealthy {
		t.Errorf("exit %d, want 3; stderr:\n%s", r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q, want nothing", r.stderr)
	}
	want := `BROKEN: Entra rejected the client secret.
  organizations/o1/tenants/t1/integrations/i1, checked 2026-11-26T04:00:00Z (api)

  ✓ secret              3ms
  ✗ token:graph       412ms  AADSTS7000215  Invalid client secret provided.
      remedy: Create a new client secret in Entra and store it with dzctl integration update --client-secret-file -.
  ! permissions         1ms                 optional permission [31m missing
  – probe:alerts                            token failed
  ~ probe:mde        1250ms
  ∅ probe:cloudapps    80ms
  ⊘ probe:exchange     95ms  AADSTS53003    Blocked by Conditional Access.
      remedy: Exclude the app from the policy.
  ✓ expiry              0ms

Permissions (source: token-roles, 2 granted)
  missing required:  SecurityIncident.Read.All
  missing optional:  Machine.LiveResponse, Machine.Isolate
  extra:             Directory.ReadWrite.All
`
	if d := cmp.Diff(want, r.stdout); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Error("report passes a terminal escape through")
	}
	diffProto(t, "check request", &dzconnectv1.CheckIntegrationRequest{Name: checkedName},
		lastRequest[*dzconnectv1.CheckIntegrationRequest](t, h, "CheckIntegration"))
}

func TestCheckReportASCIIAndHealthy(t *testing.T) {
	h := checkHarness(t)
	h.srv.nextCheck[checkedName] = &dzconnectv1.Check{
		Outcome: dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY,
		Trigger: "api",
		Summary: "All 4 steps passed.",
		Steps: []*dzconnectv1.CheckStep{
			{Name: "secret", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PASSED, Duration: ms(2)},
			{Name: "token:graph", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PASSED, Duration: ms(180)},
			{Name: "probe:mde", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_BLOCKED, Duration: ms(7)},
			{Name: "probe:exchange", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_FAILED, Duration: ms(9)},
		},
		Permissions: &dzconnectv1.PermissionReport{Source: "entra-app-role-assignments", Granted: []string{"SecurityAlert.Read.All"}},
	}
	r := h.ok("", "integration", "check", checkedName, "--ascii")
	want := `HEALTHY: All 4 steps passed.
  organizations/o1/tenants/t1/integrations/i1, checked 2026-11-26T04:00:00Z (api)

  ok    secret            2ms
  ok    token:graph     180ms
  BLOCK probe:mde         7ms
  FAIL  probe:exchange    9ms

Permissions (source: entra-app-role-assignments, 1 granted)
  missing required:  none
  missing optional:  none
  extra:             none
`
	if d := cmp.Diff(want, r.stdout); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
}

func TestCheckWithoutPermissionReport(t *testing.T) {
	h := checkHarness(t)
	h.srv.nextCheck[checkedName] = &dzconnectv1.Check{Outcome: dzconnectv1.IntegrationState_INTEGRATION_STATE_DEGRADED}
	r := h.ok("", "check", checkedName)
	for _, want := range []string{"DEGRADED\n", "Permissions: not evaluated\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestCheckFailedTokenPermissions: a report whose permissions were never
// read (a failed token step: no source) says so, not "missing required:
// none", which reads as good news (issue 10 item 9c).
func TestCheckFailedTokenPermissions(t *testing.T) {
	h := checkHarness(t)
	h.srv.nextCheck[checkedName] = &dzconnectv1.Check{Outcome: dzconnectv1.IntegrationState_INTEGRATION_STATE_BROKEN,
		Summary:     "Entra rejected the client secret.",
		Permissions: &dzconnectv1.PermissionReport{}}
	r := h.run("", "check", checkedName)
	if !strings.Contains(r.stdout, "Permissions: not evaluated\n") || strings.Contains(r.stdout, "missing required") {
		t.Errorf("report of a check without a token:\n%s", r.stdout)
	}
}

func TestCheckExitCodes(t *testing.T) {
	for _, tt := range []struct {
		outcome dzconnectv1.IntegrationState
		want    int
	}{
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY, 0},
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_DEGRADED, 0},
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_PROPAGATING, 0},
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_BROKEN, 3},
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY, 3},
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_UNVERIFIED, 3},
		{dzconnectv1.IntegrationState_INTEGRATION_STATE_UNSPECIFIED, 3},
	} {
		t.Run(tt.outcome.String(), func(t *testing.T) {
			h := checkHarness(t)
			h.srv.nextCheck[checkedName] = &dzconnectv1.Check{Outcome: tt.outcome, Summary: "s"}
			for _, args := range [][]string{
				{"check", checkedName},
				{"integration", "check", checkedName},
				{"-o", "json", "check", checkedName},
			} {
				if r := h.run("", args...); r.code != tt.want || r.stdout == "" || r.stderr != "" {
					t.Errorf("dzctl %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, tt.want, r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	h := checkHarness(t)
	h.srv.nextCheck[checkedName] = brokenCheck()
	r := h.run("", "-o", "json", "check", checkedName)
	if r.code != 3 {
		t.Errorf("exit %d, want 3", r.code)
	}
	var got dzconnectv1.CheckIntegrationResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("JSON output (%v):\n%s", err, r.stdout)
	}
	want := brokenCheck()
	want.Name = got.GetCheck().GetName()
	diffProto(t, "JSON check", want, got.GetCheck())
	if got.GetIntegration().GetName() != checkedName || got.GetIntegration().GetState() != dzconnectv1.IntegrationState_INTEGRATION_STATE_BROKEN {
		t.Errorf("JSON integration = %v", got.GetIntegration())
	}
	if !strings.Contains(r.stdout, `"missingRequired"`) || !strings.Contains(r.stdout, `"INTEGRATION_STATE_BROKEN"`) {
		t.Errorf("JSON is not protojson:\n%s", r.stdout)
	}
}

func TestCheckErrors(t *testing.T) {
	h := checkHarness(t)
	// Not found: an RPC error, exit 1.
	r := h.run("", "check", "organizations/o1/tenants/t1/integrations/nope")
	if r.code != cli.ExitError || !strings.HasPrefix(r.stderr, "Error: NotFound: ") || r.stdout != "" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	h.srv.failNext("CheckIntegration", status.Error(codes.PermissionDenied, "operator role required"))
	if r = h.run("", "check", checkedName); r.code != cli.ExitError || !strings.Contains(r.stderr, "Error: PermissionDenied: operator role required") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	h.srv.failNext("ListChecks", status.Error(codes.Internal, "boom"))
	if r = h.run("", "integration", "checks", checkedName); r.code != cli.ExitError || !strings.Contains(r.stderr, "Error: Internal: boom") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	// Usage errors make no call.
	before := len(h.srv.allCalls())
	for _, args := range [][]string{
		{"check"},
		{"check", "organizations/o1/tenants/t1"},
		{"integration", "check", checkedName, "extra"},
		{"integration", "checks", "i1"},
		{"integration", "checks", checkedName, "--limit", "-1"},
	} {
		if r := h.run("", args...); r.code != cli.ExitUsage {
			t.Errorf("dzctl %v: exit %d, want 2; stderr:\n%s", args, r.code, r.stderr)
		}
	}
	if n := len(h.srv.allCalls()) - before; n != 0 {
		t.Errorf("usage errors made %d calls", n)
	}
}

func TestCheckSendsTimeoutAsDeadline(t *testing.T) {
	h := checkHarness(t)
	h.ok("", "--timeout", "7s", "check", checkedName)
	h.srv.mu.Lock()
	left := h.srv.checkDeadline
	h.srv.mu.Unlock()
	if left <= 5*time.Second || left > 7*time.Second {
		t.Errorf("server saw %v before the deadline, want about 7s", left)
	}
	h.ok("", "--timeout", "0", "check", checkedName)
	h.srv.mu.Lock()
	left = h.srv.checkDeadline
	h.srv.mu.Unlock()
	if left != 0 {
		t.Errorf("--timeout 0 sent a deadline %v away", left)
	}
}

func TestIntegrationChecksHistory(t *testing.T) {
	h := checkHarness(t) // the fake's default page size is 2
	outcomes := []dzconnectv1.IntegrationState{
		dzconnectv1.IntegrationState_INTEGRATION_STATE_BROKEN,
		dzconnectv1.IntegrationState_INTEGRATION_STATE_PROPAGATING,
		dzconnectv1.IntegrationState_INTEGRATION_STATE_DEGRADED,
		dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY,
		dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
	}
	var history []*dzconnectv1.Check // newest first
	for i, o := range outcomes {
		history = append([]*dzconnectv1.Check{{
			Name:      checkedName + "/checks/c" + string(rune('1'+i)),
			Outcome:   o,
			Trigger:   []string{"schedule", "api"}[i%2],
			StartTime: ts("2026-11-2" + string(rune('1'+i)) + "T04:00:00Z"),
			Summary:   "summary " + string(rune('1'+i)),
		}}, history...)
	}
	h.srv.checks = map[string][]*dzconnectv1.Check{checkedName: history}

	r := h.ok("", "integration", "checks", checkedName)
	var tokens []string
	for _, c := range h.srv.callsOf("ListChecks") {
		req := c.req.(*dzconnectv1.ListChecksRequest)
		if req.GetParent() != checkedName {
			t.Errorf("parent = %q", req.GetParent())
		}
		tokens = append(tokens, req.GetPageToken())
	}
	if d := cmp.Diff([]string{"", "p2", "p4"}, tokens); d != "" {
		t.Errorf("page tokens (-want +got):\n%s", d)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 {
		t.Fatalf("table:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "TIME OUTCOME TRIGGER SUMMARY" {
		t.Errorf("header = %q", lines[0])
	}
	for i, want := range [][]string{
		{"2026-11-25T04:00:00Z", "blocked-by-policy", "schedule", "summary 5"},
		{"2026-11-24T04:00:00Z", "healthy", "api", "summary 4"},
		{"2026-11-23T04:00:00Z", "degraded", "schedule", "summary 3"},
		{"2026-11-22T04:00:00Z", "propagating", "api", "summary 2"},
		{"2026-11-21T04:00:00Z", "broken", "schedule", "summary 1"},
	} {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d = %q, want %q", i, lines[i+1], want)
		}
	}

	// --limit stops early and asks for no more than it needs.
	before := len(h.srv.callsOf("ListChecks"))
	r = h.ok("", "int", "checks", checkedName, "--limit", "3")
	var sizes []int32
	for _, c := range h.srv.callsOf("ListChecks")[before:] {
		sizes = append(sizes, c.req.(*dzconnectv1.ListChecksRequest).GetPageSize())
	}
	if d := cmp.Diff([]int32{3}, sizes); d != "" {
		t.Errorf("page sizes (-want +got):\n%s", d)
	}
	if n := strings.Count(r.stdout, "summary"); n != 3 {
		t.Errorf("--limit 3 printed %d rows:\n%s", n, r.stdout)
	}

	// JSON merges every page into one response without a token.
	r = h.ok("", "-o", "json", "integration", "checks", checkedName)
	var all dzconnectv1.ListChecksResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.GetChecks()) != 5 || all.GetNextPageToken() != "" || all.GetChecks()[0].GetName() != checkedName+"/checks/c5" {
		t.Errorf("JSON list: %d checks, token %q:\n%s", len(all.GetChecks()), all.GetNextPageToken(), r.stdout)
	}

	// A check run through dzctl shows up first in the history.
	h.srv.nextCheck[checkedName] = &dzconnectv1.Check{Outcome: dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY, Summary: "fresh"}
	h.ok("", "check", checkedName)
	r = h.ok("", "integration", "checks", checkedName, "--limit", "1")
	if !strings.Contains(r.stdout, "fresh") || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("latest check:\n%s", r.stdout)
	}
}

func TestIntegrationChecksEmpty(t *testing.T) {
	h := checkHarness(t)
	r := h.ok("", "integration", "checks", checkedName)
	if r.stdout != "" || r.stderr != "No checks found.\n" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestIntegrationListExpireBefore(t *testing.T) {
	h := newHarness(t)
	soon := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	later := time.Now().Add(100 * 24 * time.Hour).UTC().Truncate(time.Second)
	h.srv.integrations = []*dzconnectv1.Integration{
		{Name: "organizations/o1/tenants/t1/integrations/soon", Credential: &dzconnectv1.Credential{ExpireTime: ts(soon.Format(time.RFC3339))}},
		{Name: "organizations/o1/tenants/t1/integrations/later", Credential: &dzconnectv1.Credential{ExpireTime: ts(later.Format(time.RFC3339))}},
		{Name: "organizations/o1/tenants/t1/integrations/unknown"},
	}

	// A duration is counted from now.
	for _, tt := range []struct {
		arg  string
		dur  time.Duration
		want []string
	}{
		{"720h", 720 * time.Hour, []string{"soon"}},
		{"30d", 30 * 24 * time.Hour, []string{"soon"}},
		{"2400h", 2400 * time.Hour, []string{"soon", "later"}},
		{"-1h", -time.Hour, nil},
	} {
		start := time.Now()
		r := h.ok("", "integration", "list", "--org", "o1", "--expire-before", tt.arg)
		end := time.Now()
		req := lastRequest[*dzconnectv1.ListIntegrationsRequest](t, h, "ListIntegrations")
		got := req.GetExpireBefore().AsTime()
		if got.Before(start.Add(tt.dur)) || got.After(end.Add(tt.dur)) {
			t.Errorf("--expire-before %s sent %v, want now%+v", tt.arg, got, tt.dur)
		}
		for _, n := range []string{"soon", "later", "unknown"} {
			if has, want := strings.Contains(r.stdout, "integrations/"+n+" "), strings.Contains(strings.Join(tt.want, " "), n); has != want {
				t.Errorf("--expire-before %s: row %s shown = %v\n%s", tt.arg, n, has, r.stdout)
			}
		}
	}

	// An RFC 3339 time is sent as is, with the other filters, on every page.
	h.ok("", "integration", "list", "--tenant", "organizations/o1/tenants/t1", "--state", "blocked-by-policy",
		"--expire-before", "2027-01-01T00:00:00Z", "--page-size", "1")
	diffProto(t, "filtered list", &dzconnectv1.ListIntegrationsRequest{
		Parent:       "organizations/o1/tenants/t1",
		PageSize:     1,
		State:        dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
		ExpireBefore: ts("2027-01-01T00:00:00Z"),
	}, lastRequest[*dzconnectv1.ListIntegrationsRequest](t, h, "ListIntegrations"))

	before := len(h.srv.callsOf("ListIntegrations"))
	h.ok("", "integration", "list", "--org", "o1", "--expire-before", "2030-01-01T00:00:00+02:00", "--page-size", "1")
	calls := h.srv.callsOf("ListIntegrations")[before:]
	if len(calls) != 2 {
		t.Fatalf("%d pages, want 2", len(calls))
	}
	for _, c := range calls {
		if got := c.req.(*dzconnectv1.ListIntegrationsRequest).GetExpireBefore(); !got.AsTime().Equal(ts("2029-12-31T22:00:00Z").AsTime()) {
			t.Errorf("page %q expire_before = %v", c.req.(*dzconnectv1.ListIntegrationsRequest).GetPageToken(), got.AsTime())
		}
	}

	r := h.run("", "integration", "list", "--org", "o1", "--expire-before", "next week")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `invalid --expire-before "next week"`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestIntegrationListStates(t *testing.T) {
	h := newHarness(t)
	for arg, want := range map[string]dzconnectv1.IntegrationState{
		"unverified":                          dzconnectv1.IntegrationState_INTEGRATION_STATE_UNVERIFIED,
		"healthy":                             dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY,
		"propagating":                         dzconnectv1.IntegrationState_INTEGRATION_STATE_PROPAGATING,
		"degraded":                            dzconnectv1.IntegrationState_INTEGRATION_STATE_DEGRADED,
		"broken":                              dzconnectv1.IntegrationState_INTEGRATION_STATE_BROKEN,
		"blocked-by-policy":                   dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
		"blocked_by_policy":                   dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
		"INTEGRATION_STATE_BLOCKED_BY_POLICY": dzconnectv1.IntegrationState_INTEGRATION_STATE_BLOCKED_BY_POLICY,
	} {
		h.run("", "integration", "list", "--org", "o1", "--state", arg)
		if got := lastRequest[*dzconnectv1.ListIntegrationsRequest](t, h, "ListIntegrations").GetState(); got != want {
			t.Errorf("--state %s sent %v", arg, got)
		}
	}
}
