package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

var defenderRoles = []string{"AuditLog.Read.All", "SecurityAlert.Read.All", "SecurityIncident.Read.All", "User.Read.All", "ThreatHunting.Read.All"}

// verifyFixture is a dzconnect server pointed at an in-process msftsim,
// with one organization and one customer tenant known to both.
type verifyFixture struct {
	s      *stack.Stack
	sim    *msftsim.Sim
	org    stack.Org
	tenant string // dzconnect tenant name
	simTID string // Entra tenant ID
}

func newVerifyFixture(t *testing.T, spec msftsim.TenantSpec, extraArgs ...string) verifyFixture {
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: append(stack.SimArgs(sim), extraArgs...)})
	info, err := sim.Admin().AddTenant(spec)
	if err != nil {
		t.Fatal(err)
	}
	org := s.NewOrg(t, "Verify")
	resp, err := s.Clients().Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer"}})
	if err != nil {
		t.Fatal(err)
	}
	return verifyFixture{s: s, sim: sim, org: org, tenant: resp.GetTenant().GetName(), simTID: info.ID}
}

// app registers an app in the customer tenant as its admin would, and the
// matching integration in dzconnect.
func (f verifyFixture) app(t *testing.T, req msftsim.AppRequest, in *v1.Integration) (*v1.Integration, msftsim.AppCreds) {
	t.Helper()
	creds, err := f.sim.Admin().CreateApp(f.simTID, req)
	if err != nil {
		t.Fatal(err)
	}
	if in == nil {
		in = &v1.Integration{Kind: defenderKind}
	}
	in.Application = &v1.EntraApplication{ClientId: creds.ClientID}
	if in.Credential == nil {
		in.Credential = &v1.Credential{ExpireTime: timestamppb.New(time.Now().Add(300 * 24 * time.Hour))}
	}
	resp, err := f.s.Clients().Integrations.CreateIntegration(f.org.OperatorCtx, &v1.CreateIntegrationRequest{
		Parent: f.tenant, Integration: in, ClientSecret: creds.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetIntegration(), creds
}

func (f verifyFixture) check(t *testing.T, name string) *v1.Check {
	t.Helper()
	resp, err := f.s.Clients().Integrations.CheckIntegration(f.org.OperatorCtx, &v1.CheckIntegrationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetIntegration().GetState() != resp.GetCheck().GetOutcome() {
		t.Fatalf("integration state %v, check outcome %v", resp.GetIntegration().GetState(), resp.GetCheck().GetOutcome())
	}
	return resp.GetCheck()
}

func step(t *testing.T, c *v1.Check, name string) *v1.CheckStep {
	t.Helper()
	for _, s := range c.GetSteps() {
		if s.GetName() == name {
			return s
		}
	}
	t.Fatalf("no step %s in %s", name, describe(c))
	return nil
}

func describe(c *v1.Check) string {
	var b strings.Builder
	b.WriteString(c.GetOutcome().String() + ": " + c.GetSummary() + "\n")
	for _, s := range c.GetSteps() {
		b.WriteString("  " + s.GetName() + " " + s.GetStatus().String() + " " + s.GetErrorCode() + " " + s.GetMessage() + "\n")
	}
	return b.String()
}

func wantOutcome(t *testing.T, c *v1.Check, want v1.IntegrationState) {
	t.Helper()
	if c.GetOutcome() != want {
		t.Fatalf("outcome %v, want %v\n%s", c.GetOutcome(), want, describe(c))
	}
}

const (
	passed      = v1.CheckStepStatus_CHECK_STEP_STATUS_PASSED
	failed      = v1.CheckStepStatus_CHECK_STEP_STATUS_FAILED
	unavailable = v1.CheckStepStatus_CHECK_STEP_STATUS_UNAVAILABLE
	propagating = v1.CheckStepStatus_CHECK_STEP_STATUS_PROPAGATING
	skipped     = v1.CheckStepStatus_CHECK_STEP_STATUS_SKIPPED
)

func TestCheckHealthyDefender(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	for _, name := range []string{"secret", "token:graph", "permissions", "probe:graph-security-alerts-v2", "probe:graph-security-incidents",
		"probe:graph-audit-signins", "probe:graph-users", "expiry"} {
		if s := step(t, c, name); s.GetStatus() != passed {
			t.Fatalf("step %s = %v", name, s.GetStatus())
		}
	}
	if p := c.GetPermissions(); p.GetSource() != "token-roles" || len(p.GetMissingRequired())+len(p.GetMissingOptional())+len(p.GetExtra()) != 0 {
		t.Fatalf("permissions %v", p)
	}
	// The history lists it; the integration can be found by state.
	checks, err := f.s.Clients().Integrations.ListChecks(f.org.ViewerCtx, &v1.ListChecksRequest{Parent: in.GetName()})
	if err != nil || len(checks.GetChecks()) != 1 || checks.GetChecks()[0].GetName() != c.GetName() {
		t.Fatalf("ListChecks: %v %v", checks, err)
	}
	list, err := f.s.Clients().Integrations.ListIntegrations(f.org.ViewerCtx, &v1.ListIntegrationsRequest{
		Parent: f.tenant, State: v1.IntegrationState_INTEGRATION_STATE_HEALTHY})
	if err != nil || len(list.GetIntegrations()) != 1 {
		t.Fatalf("list healthy: %v %v", list, err)
	}
	// An on-demand check is audited like any write.
	ev, err := f.s.Clients().Audit.ListAuditEvents(f.org.AdminCtx, &v1.ListAuditEventsRequest{Parent: f.org.Name, Resource: c.GetName()})
	if err != nil || len(ev.GetAuditEvents()) != 1 || ev.GetAuditEvents()[0].GetMethod() != v1.IntegrationService_CheckIntegration_FullMethodName {
		t.Fatalf("audit of the check: %v %v", ev, err)
	}
}

func TestCheckWrongSecret(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	creds, err := f.sim.Admin().CreateApp(f.simTID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.s.Clients().Integrations.CreateIntegration(f.org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: f.tenant,
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: creds.ClientID}},
		ClientSecret: "not~the.right_secret_value_0123456789abc"})
	if err != nil {
		t.Fatal(err)
	}
	// Older than the settle window: a wrong secret is broken, not propagating.
	c := f.checkAfterSettle(t, resp.GetIntegration().GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	tok := step(t, c, "token:graph")
	if tok.GetStatus() != failed || tok.GetErrorCode() != "AADSTS7000215" || !strings.Contains(strings.ToLower(tok.GetRemedy()), "value") {
		t.Fatalf("token step %v", tok)
	}
	if s := step(t, c, "probe:graph-users"); s.GetStatus() != skipped {
		t.Fatalf("probe after a token failure = %v", s.GetStatus())
	}
}

// checkAfterSettle checks as the scheduled sweep would, long after the
// last change: the server under test runs with a zero settle window.
func (f verifyFixture) checkAfterSettle(t *testing.T, name string) *v1.Check { return f.check(t, name) }

func TestCheckExpiredSecret(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	in, creds := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles, SecretLifetime: "720h"}, nil)
	f.sim.Admin().SetClock(creds.SecretExpires.Add(time.Hour))
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	tok := step(t, c, "token:graph")
	if tok.GetErrorCode() != "AADSTS7000222" || !strings.Contains(strings.ToLower(tok.GetRemedy()), "rotate") && !strings.Contains(strings.ToLower(tok.GetRemedy()), "new client secret") {
		t.Fatalf("token step %v", tok)
	}
}

func TestCheckMissingAndExtraPermissions(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	// AuditLog.Read.All: required by the default catalog (named by
	// Dropzone's setup page; internal/catalog/default.json).
	roles := append([]string{"Directory.Read.All"}, slices.DeleteFunc(slices.Clone(defenderRoles), func(r string) bool { return r == "AuditLog.Read.All" })...)
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles}, nil)
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	p := c.GetPermissions()
	if !slices.Equal(p.GetMissingRequired(), []string{"AuditLog.Read.All"}) || !slices.Equal(p.GetExtra(), []string{"Directory.Read.All"}) {
		t.Fatalf("permissions %v", p)
	}
	if s := step(t, c, "permissions"); s.GetStatus() != failed || !strings.Contains(s.GetMessage(), "AuditLog.Read.All") {
		t.Fatalf("permissions step %v", s)
	}
	if s := step(t, c, "probe:graph-audit-signins"); s.GetStatus() != failed {
		t.Fatalf("sign-ins probe %v", s)
	}
	if s := step(t, c, "probe:graph-users"); s.GetStatus() != passed {
		t.Fatalf("users probe %v", s)
	}
}

func TestCheckOptionalPermissionMissingIsDegraded(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles[:4]}, nil)
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
	if p := c.GetPermissions(); !slices.Equal(p.GetMissingOptional(), []string{"ThreatHunting.Read.All"}) {
		t.Fatalf("permissions %v", p)
	}
}

func TestCheckDefenderNotLicensed(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{Licences: []string{msftsim.LicenceEntraP1}})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	if s := step(t, c, "probe:graph-security-alerts-v2"); s.GetStatus() != unavailable {
		t.Fatalf("alerts probe in an unlicensed tenant: %v", s)
	}
	if s := step(t, c, "probe:graph-users"); s.GetStatus() != passed {
		t.Fatalf("users probe %v", s)
	}
}

func TestCheckExpiringSoonIsDegraded(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles},
		&v1.Integration{Kind: defenderKind, Credential: &v1.Credential{ExpireTime: timestamppb.New(time.Now().Add(10 * 24 * time.Hour))}})
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
	if s := step(t, c, "expiry"); s.GetErrorCode() != "CREDENTIAL_EXPIRING" {
		t.Fatalf("expiry step %v", s)
	}
	list, err := f.s.Clients().Integrations.ListIntegrations(f.org.ViewerCtx, &v1.ListIntegrationsRequest{
		Parent: f.org.Name + "/tenants/-", ExpireBefore: timestamppb.New(time.Now().Add(30 * 24 * time.Hour))})
	if err != nil || len(list.GetIntegrations()) != 1 {
		t.Fatalf("expire_before filter: %v %v", list, err)
	}
}

// TestCheckNewSecretPropagating: a secret added through Graph is refused
// (AADSTS7000215) for a while. UpdateIntegration tries it for
// --secret-verify-wait, then refuses it (the current secret stays, the
// integration healthy); once Microsoft caught up, the same update
// switches to it and the next check is healthy, with no intervention.
func TestCheckNewSecretPropagating(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--secret-verify-wait", "1s")
	in, creds := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)

	// The customer's admin adds a new secret (through Graph, as the portal does).
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.applications.addPassword": {SecretLag: &faults.Lag{For: faults.Duration(30 * time.Second)}},
	}}})
	secret := f.addPassword(t, creds.ObjectID)
	update := func() (*v1.UpdateIntegrationResponse, error) {
		return f.s.Clients().Integrations.UpdateIntegration(f.org.OperatorCtx, &v1.UpdateIntegrationRequest{
			Integration: &v1.Integration{Name: in.GetName()}, UpdateMask: &fieldmaskpb.FieldMask{}, ClientSecret: secret})
	}
	_, err := update()
	st := wantCode(t, err, codes.InvalidArgument)
	wantViolation(t, err, "client_secret")
	if !strings.Contains(st.Message(), "AADSTS7000215") {
		t.Fatalf("refusal %q lacks Microsoft's code", st.Message())
	}
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	f.sim.Admin().AdvanceClock(31 * time.Second)
	if _, err := update(); err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
}

// addPassword adds a client secret to an application through Graph, with
// a provisioner app consented in the tenant, and returns the secret text.
func (f verifyFixture) addPassword(t *testing.T, appObjectID string) string {
	t.Helper()
	home, err := f.sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: "Dropzone"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.sim.Admin().RegisterProvisioner(home.ID, msftsim.AppRequest{DisplayName: "Dropzone Provisioner"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.sim.Admin().Consent(f.simTID, p.ClientID, []string{"Application.ReadWrite.All"}); err != nil {
		t.Fatal(err)
	}
	ep := f.sim.Endpoints()
	cred, err := azidentity.NewClientSecretCredential(f.simTID, p.ClientID, p.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.Authority},
			Transport: f.sim.HTTPClient()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{msftsim.ResourceGraph + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", ep.Graph+"/applications/"+appObjectID+"/addPassword",
		strings.NewReader(`{"passwordCredential":{"displayName":"rotated"}}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.sim.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		SecretText string `json:"secretText"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.SecretText == "" {
		t.Fatalf("addPassword: %d %v", resp.StatusCode, err)
	}
	return out.SecretText
}

// TestCheckThrottled: a 429 storm on Graph is waited out as Retry-After
// says (never earlier) and the check still reaches a conclusion.
func TestCheckThrottled(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.*": {Throttle: &faults.Throttle{Every: 2, Count: 3, RetryAfterSeconds: 1}},
	}}})
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	if n := f.sim.Admin().TotalEarlyRetries(); n != 0 {
		t.Fatalf("%d requests came back before Retry-After elapsed", n)
	}
	var throttled int64
	for _, rc := range f.sim.Admin().Counters() {
		throttled += rc.Statuses[429]
	}
	if throttled == 0 {
		t.Fatal("no request was throttled: the test proves nothing")
	}
}

func TestCheckSentinel(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	sub := "6f1d2c3b-4a59-4e7d-8c1b-2a3f4e5d6c7b"
	ws, err := f.sim.Admin().AddWorkspace(f.simTID, msftsim.Workspace{SubscriptionID: sub, ResourceGroup: "rg-sentinel", Name: "law-sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	scope := "/subscriptions/" + sub + "/resourceGroups/rg-sentinel"
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI Sentinel Integration", Roles: []string{"log_analytics/Data.Read", "SecurityEvents.Read.All"},
		AzureRoles: []msftsim.AzureRole{{Scope: scope, Role: "Microsoft Sentinel Reader"}}},
		&v1.Integration{Kind: sentinelKind, Sentinel: &v1.SentinelWorkspace{SubscriptionId: sub, ResourceGroup: "rg-sentinel",
			WorkspaceName: "law-sentinel", WorkspaceId: ws.CustomerID}})
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	for _, name := range []string{"probe:sentinel-workspace", "probe:loganalytics-query"} {
		if s := step(t, c, name); s.GetStatus() != passed {
			t.Fatalf("%s = %v", name, s)
		}
	}
	// Graph's legacy /security/alerts is retired (2026-08-31): no step runs
	// on it, and the SecurityEvents.Read.All grant is neither missing nor extra.
	for _, s := range c.GetSteps() {
		if strings.Contains(s.GetName(), "graph-security-alerts-v1") {
			t.Fatalf("a step on the retired legacy alerts API: %v", s)
		}
	}
	if p := c.GetPermissions(); len(p.GetMissingRequired())+len(p.GetExtra()) != 0 {
		t.Fatalf("permissions %v", p)
	}
}

var _ = context.Background

// recordCheck records a check made up by a test, through the verification
// service's recording use case, on the stack's database.
func recordCheck(pool *pgxpool.Pool, c verify.Check) (verify.Result, error) {
	db := postgres.New(pool)
	ins, err := jobs.NewInserter(pool)
	if err != nil {
		return verify.Result{}, err
	}
	return recordCheckWith(db, webhook.NewNotifier(db, ins, 0), c)
}

// recordCheckWith records c as verify does, queueing its events through n.
func recordCheckWith(db *postgres.DB, n event.Notifier, c verify.Check) (verify.Result, error) {
	return verify.NewService(verify.Config{}, verify.Deps{Tx: db, Store: db, Notifier: n, Audit: db}).Record(context.Background(), c)
}
