package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// sharedFixture is a dzconnect server pointed at msftsim and an
// organization whose shared Defender application lives in its home tenant
// in msftsim (registered from the manifest fragment dzconnect prints).
type sharedFixture struct {
	consentFixture
	sa   v1.SharedApplicationServiceClient
	home string           // the organization's home tenant in msftsim
	app  msftsim.AppCreds // the shared application there
}

// rolesOf turns a manifest fragment into msftsim's "resourceAppId/roleId"
// requested roles, as if the organization pasted it into the manifest.
func rolesOf(m sharedapp.Manifest, without ...string) []string {
	var out []string
	for _, r := range m.RequiredResourceAccess {
		for _, a := range r.ResourceAccess {
			if !slices.Contains(without, a.ID) {
				out = append(out, r.ResourceAppID+"/"+a.ID)
			}
		}
	}
	return out
}

func newSharedFixture(t *testing.T, without ...string) sharedFixture {
	t.Helper()
	return newSharedFixtureArgs(t, nil, without...)
}

// newSharedFixtureArgs is newSharedFixture with extra serve flags.
func newSharedFixtureArgs(t *testing.T, extra []string, without ...string) sharedFixture {
	t.Helper()
	sim := stack.StartSim(t)
	// No settle window: a missing permission or a refused secret is a
	// finding at once, not "propagating" (msftsim imposes no lag here).
	// No sweep jitter: whichever replica leads enqueues the batches at once
	// (TestSharedModeSweep).
	args := append(stack.SimArgs(sim), "--settle-window", "1ns", "--sweep-jitter", "0s")
	s := stack.Start(t, stack.Options{ExtraArgs: append(args, extra...)})
	f := sharedFixture{consentFixture: consentFixture{s: s, sim: sim}, sa: v1.NewSharedApplicationServiceClient(s.Conn), home: uuid.NewString()}
	f.org = s.NewOrg(t, "Shared")
	m := sharedapp.ManifestFor(catalog.Default(), integration.KindDefender, nil)
	app, err := sim.Admin().RegisterProvisioner(f.home, msftsim.AppRequest{DisplayName: "Dropzone AI (Defender, shared)",
		RequestedRoles: rolesOf(m, without...)})
	if err != nil {
		t.Fatal(err)
	}
	f.app = app
	return f
}

func (f sharedFixture) create(t *testing.T) *v1.SharedApplication {
	t.Helper()
	resp, err := f.sa.CreateSharedApplication(f.org.AdminCtx, &v1.CreateSharedApplicationRequest{Parent: f.org.Name,
		SharedApplication: &v1.SharedApplication{Kind: defenderKind, ClientId: f.app.ClientID, DisplayName: "Dropzone AI (Defender, shared)"},
		ClientSecret:      f.app.ClientSecret, RequestId: uuid.NewString()})
	if err != nil {
		t.Fatalf("CreateSharedApplication: %v", err)
	}
	return resp.GetSharedApplication()
}

// consentLink issues app's consent link for tenant, parsed.
func (f sharedFixture) consentLink(t *testing.T, app *v1.SharedApplication, tenant string) (*v1.GetSharedApplicationConsentLinkResponse, *url.URL) {
	t.Helper()
	link, err := f.sa.GetSharedApplicationConsentLink(f.org.OperatorCtx, &v1.GetSharedApplicationConsentLinkRequest{
		Name: app.GetName(), Tenant: tenant, RedirectUri: consentRedirect})
	if err != nil {
		t.Fatalf("GetSharedApplicationConsentLink: %v", err)
	}
	u, err := url.Parse(link.GetUrl())
	if err != nil {
		t.Fatal(err)
	}
	return link, u
}

// consentIn adds a customer tenant and has its administrator consent the
// shared application through the link dzconnect issues; the redirect is
// recorded with CompleteAdminConsent.
func (f sharedFixture) consentIn(t *testing.T, app *v1.SharedApplication) (tenant, simTID string) {
	t.Helper()
	tenant, simTID = f.newCustomer(t, f.org)
	link, u := f.consentLink(t, app, tenant)
	q := u.Query()
	if !strings.HasPrefix(link.GetUrl(), strings.TrimSuffix(f.sim.Endpoints().Authority, "/")+"/"+simTID+"/v2.0/adminconsent?") ||
		q.Get("client_id") != f.app.ClientID || q.Get("scope") != "https://graph.microsoft.com/.default" ||
		q.Get("redirect_uri") != consentRedirect || len(q.Get("state")) != 43 {
		t.Fatalf("link %s", link.GetUrl())
	}
	back := f.follow(t, link.GetUrl())
	if back.Get("admin_consent") != "True" {
		t.Fatalf("redirect %v", back)
	}
	done, err := f.s.Clients().Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	if err != nil {
		t.Fatalf("CompleteAdminConsent: %v", err)
	}
	if done.GetTenant().GetProvisionerConsentTime() != nil {
		t.Fatal("a shared application's consent was recorded as the provisioner's")
	}
	return tenant, simTID
}

func (f sharedFixture) integrate(t *testing.T, tenant string) *v1.Integration {
	t.Helper()
	resp, err := f.sa.CreateSharedIntegration(f.org.OperatorCtx, &v1.CreateSharedIntegrationRequest{Parent: tenant,
		Integration: &v1.Integration{Kind: defenderKind}, RequestId: uuid.NewString()})
	if err != nil {
		t.Fatalf("CreateSharedIntegration: %v", err)
	}
	in := resp.GetIntegration()
	if in.GetManagementMode() != v1.ManagementMode_MANAGEMENT_MODE_SHARED || in.GetApplication().GetClientId() != f.app.ClientID ||
		len(in.GetCredentials()) != 0 {
		t.Fatalf("shared integration %v", in)
	}
	return in
}

func (f sharedFixture) check(t *testing.T, in *v1.Integration) *v1.Check {
	t.Helper()
	resp, err := f.s.Clients().Integrations.CheckIntegration(f.org.OperatorCtx, &v1.CheckIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatalf("CheckIntegration: %v", err)
	}
	return resp.GetCheck()
}

func sharedSecretAt(t *testing.T, s *stack.Stack, org string, version int) (string, bool) {
	t.Helper()
	n, err := resource.ParseOrg("name", org)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.Vault.KV().GetVersion(context.Background(), "dzconnect/"+sharedapp.SecretPath(n.Org, integration.KindDefender), version)
	if err != nil || sec == nil {
		return "", false
	}
	v, _ := sec.Data["client_secret"].(string)
	return v, true
}

// TestSharedMode: the organization registers its shared Defender
// application, two tenants consent it, an integration in each uses its
// credential (nothing created in the tenants), checks are healthy; a new
// secret takes effect for both; a tenant without consent gets the link; the
// application cannot be deleted while used; secrets never leave Vault.
func TestSharedMode(t *testing.T) {
	t.Parallel()
	f := newSharedFixture(t)
	c := f.s.Clients()

	app := f.create(t)
	want := sharedapp.ManifestFor(catalog.Default(), integration.KindDefender, nil).JSON()
	if app.GetName() != f.org.Name+"/sharedApplications/microsoft-365-defender" || app.GetClientId() != f.app.ClientID ||
		app.GetSecretVersion() != 1 || app.GetManifestJson() != want || !strings.Contains(want, `"AzureADMultipleOrgs"`) {
		t.Fatalf("shared application %v", app)
	}
	if v, ok := sharedSecretAt(t, f.s, f.org.Name, 1); !ok || v != f.app.ClientSecret {
		t.Fatal("the shared application's secret is not in Vault")
	}
	_, err := f.sa.CreateSharedApplication(f.org.AdminCtx, &v1.CreateSharedApplicationRequest{Parent: f.org.Name,
		SharedApplication: &v1.SharedApplication{Kind: defenderKind, ClientId: uuid.NewString()}, ClientSecret: "another~Secret.Value_1234567890abcdef"})
	wantCode(t, err, codes.AlreadyExists)
	list, err := f.sa.ListSharedApplications(f.org.ViewerCtx, &v1.ListSharedApplicationsRequest{Parent: f.org.Name})
	if err != nil || len(list.GetSharedApplications()) != 1 {
		t.Fatalf("ListSharedApplications: %v, %v", list, err)
	}

	// A tenant that has not consented: FailedPrecondition with the link, nothing written.
	t3, t3ID := f.newCustomer(t, f.org)
	before := countRows(t, f.s, "integrations")
	_, err = f.sa.CreateSharedIntegration(f.org.OperatorCtx, &v1.CreateSharedIntegrationRequest{Parent: t3,
		Integration: &v1.Integration{Kind: defenderKind}})
	st := wantCode(t, err, codes.FailedPrecondition)
	var link string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == "SHARED_APPLICATION_NOT_CONSENTED" {
			link = ei.GetMetadata()["admin_consent_link"]
		}
	}
	if !strings.Contains(link, t3ID+"/v2.0/adminconsent?") || !strings.Contains(link, "client_id="+f.app.ClientID) {
		t.Fatalf("error %q, link %q", st.Message(), link)
	}
	if countRows(t, f.s, "integrations") != before {
		t.Fatal("a refused CreateSharedIntegration wrote an integration")
	}

	// Two tenants consent; an integration in each; nothing created there.
	t1, t1ID := f.consentIn(t, app)
	t2, t2ID := f.consentIn(t, app)
	for _, id := range []string{t1ID, t2ID} {
		if _, ok := f.sim.Admin().ServicePrincipalID(id, f.app.ClientID); !ok {
			t.Fatalf("msftsim: no service principal of the shared application in %s after consent", id)
		}
		apps, err := f.sim.Admin().Applications(id, nil)
		if err != nil || len(apps) != 0 {
			t.Fatalf("applications in customer tenant %s: %d (%v), want none", id, len(apps), err)
		}
	}
	i1, i2 := f.integrate(t, t1), f.integrate(t, t2)
	wantOutcome(t, f.check(t, i1), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	wantOutcome(t, f.check(t, i2), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	_, err = f.sa.CreateSharedIntegration(f.org.OperatorCtx, &v1.CreateSharedIntegrationRequest{Parent: t1,
		Integration: &v1.Integration{Kind: defenderKind}})
	wantCode(t, err, codes.AlreadyExists)
	// A shared integration has no secret of its own to replace.
	_, err = c.Integrations.UpdateIntegration(f.org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: i1.GetName()}, ClientSecret: "own~Secret.Value_1234567890abcdefghij"})
	wantCode(t, err, codes.FailedPrecondition)
	if n := countRows(t, f.s, "credentials"); n != 0 {
		t.Fatalf("%d credential rows for shared integrations", n)
	}

	// A new secret on the application in the home tenant, the old one
	// removed: checks fail until dzconnect has the new one, then both work.
	newSecret, _, err := f.sim.Admin().AddAppSecret(f.home, f.app.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Admin().RemoveAppSecret(f.home, f.app.ClientID, f.app.SecretKeyID); err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, f.check(t, i1), v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	// The new secret expires in 10 days (inside the 30-day warning window).
	up, err := f.sa.UpdateSharedApplication(f.org.AdminCtx, &v1.UpdateSharedApplicationRequest{
		SharedApplication: &v1.SharedApplication{Name: app.GetName(), Etag: app.GetEtag(),
			SecretExpireTime: timestamppb.New(time.Now().Add(10 * 24 * time.Hour))}, ClientSecret: newSecret})
	if err != nil {
		t.Fatalf("UpdateSharedApplication: %v", err)
	}
	if up.GetSharedApplication().GetSecretVersion() != 2 {
		t.Fatalf("secret_version %d, want 2", up.GetSharedApplication().GetSecretVersion())
	}
	if v, ok := sharedSecretAt(t, f.s, f.org.Name, 2); !ok || v != newSecret {
		t.Fatal("the new secret is not Vault's version 2")
	}
	_, err = f.sa.UpdateSharedApplication(f.org.AdminCtx, &v1.UpdateSharedApplicationRequest{
		SharedApplication: &v1.SharedApplication{Name: app.GetName(), Etag: app.GetEtag()}, ClientSecret: newSecret})
	wantCode(t, err, codes.Aborted)
	// Both work again, and their expiry step judges the shared
	// application's secret: it expires in 9 days, so they are degraded.
	for _, in := range []*v1.Integration{i1, i2} {
		ck := f.check(t, in)
		wantOutcome(t, ck, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
		var expiry *v1.CheckStep
		for _, st := range ck.GetSteps() {
			if st.GetName() == "expiry" {
				expiry = st
			}
		}
		if expiry.GetStatus() != v1.CheckStepStatus_CHECK_STEP_STATUS_WARNING || !strings.Contains(expiry.GetMessage(), "expires in 9 day(s)") {
			t.Fatalf("expiry step of a shared integration: %v", expiry)
		}
	}

	// Delete is refused while integrations use the application.
	_, err = f.sa.DeleteSharedApplication(f.org.AdminCtx, &v1.DeleteSharedApplicationRequest{Name: app.GetName()})
	st = wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "2 integration(s)") {
		t.Fatalf("delete refused with %q", st.Message())
	}
	for _, in := range []*v1.Integration{i1, i2} {
		if _, err := c.Integrations.DeleteIntegration(f.org.OperatorCtx, &v1.DeleteIntegrationRequest{Name: in.GetName()}); err != nil {
			t.Fatalf("DeleteIntegration: %v", err)
		}
	}
	if v, ok := sharedSecretAt(t, f.s, f.org.Name, 2); !ok || v != newSecret {
		t.Fatal("deleting a shared integration touched the shared application's secret")
	}
	if _, err := f.sa.DeleteSharedApplication(f.org.AdminCtx, &v1.DeleteSharedApplicationRequest{Name: app.GetName()}); err != nil {
		t.Fatalf("DeleteSharedApplication: %v", err)
	}
	_, err = f.sa.GetSharedApplication(f.org.ViewerCtx, &v1.GetSharedApplicationRequest{Name: app.GetName()})
	wantCode(t, err, codes.NotFound)
	if n := countRows(t, f.s, "shared_application_consents"); n != 0 {
		t.Fatalf("%d consents outlived their application", n)
	}

	// Secrets never in responses or logs.
	for _, m := range []proto.Message{app, up, list} {
		b, _ := protojson.Marshal(m)
		if strings.Contains(string(b), f.app.ClientSecret) || strings.Contains(string(b), newSecret) {
			t.Fatal("a response carries a shared application's secret")
		}
	}
	if logs := f.s.Logs.String(); strings.Contains(logs, f.app.ClientSecret) || strings.Contains(logs, newSecret) {
		t.Fatal("the logs carry a shared application's secret")
	}
}

// TestSharedModeMissingPermission: the organization's manifest lacks one of
// the catalog's permissions, so the tenant's consent does not grant it: the
// check names it, by the same rules as for a dedicated application (an
// optional permission missing: degraded; a required one: broken).
func TestSharedModeMissingPermission(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, roleID, value string
		optional            bool
		want                v1.IntegrationState
	}{
		{"optional", "dd98c7f5-2d42-42d3-a0e4-633161547251", "ThreatHunting.Read.All", true, v1.IntegrationState_INTEGRATION_STATE_DEGRADED},
		{"required", "b0afded3-3588-46d8-8b3d-9842eff778da", "AuditLog.Read.All", false, v1.IntegrationState_INTEGRATION_STATE_BROKEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSharedFixture(t, tc.roleID)
			app := f.create(t)
			tenant, _ := f.consentIn(t, app)
			c := f.check(t, f.integrate(t, tenant))
			wantOutcome(t, c, tc.want)
			missing := c.GetPermissions().GetMissingRequired()
			if tc.optional {
				missing = c.GetPermissions().GetMissingOptional()
			}
			if !slices.Equal(missing, []string{tc.value}) {
				t.Fatalf("missing %v, want [%s] (permissions %v)", missing, tc.value, c.GetPermissions())
			}
		})
	}
}

// TestSharedModeInvalid: bad input answers InvalidArgument naming the
// fields and writes nothing; another organization sees NotFound.
func TestSharedModeInvalid(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	org := s.NewOrg(t, "Shared")
	other := s.NewOrg(t, "Other")
	sa := v1.NewSharedApplicationServiceClient(s.Conn)
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)

	_, err := sa.CreateSharedApplication(org.AdminCtx, &v1.CreateSharedApplicationRequest{Parent: org.Name,
		SharedApplication: &v1.SharedApplication{ClientId: "not-a-guid", Features: []v1.Feature{v1.Feature_FEATURE_EXCHANGE}}})
	for _, field := range []string{"shared_application.kind", "shared_application.client_id", "client_secret"} {
		wantViolation(t, err, field)
	}
	_, err = sa.CreateSharedApplication(org.AdminCtx, &v1.CreateSharedApplicationRequest{Parent: org.Name,
		SharedApplication: &v1.SharedApplication{Kind: sentinelKind, ClientId: uuid.NewString(), Features: []v1.Feature{v1.Feature_FEATURE_EXCHANGE}},
		ClientSecret:      ""})
	wantViolation(t, err, "shared_application.features")
	wantViolation(t, err, "client_secret")
	_, err = sa.GetSharedApplication(org.ViewerCtx, &v1.GetSharedApplicationRequest{Name: org.Name + "/sharedApplications/teams"})
	wantViolation(t, err, "name")
	_, err = sa.CreateSharedIntegration(org.OperatorCtx, &v1.CreateSharedIntegrationRequest{Parent: tenant.GetName(),
		Integration: &v1.Integration{Kind: sentinelKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}}})
	wantViolation(t, err, "integration.application")
	wantViolation(t, err, "integration.sentinel")
	for _, table := range []string{"shared_applications", "integrations", "vault"} {
		if table == "vault" {
			if _, ok := sharedSecretAt(t, s, org.Name, 1); ok {
				t.Fatal("an invalid create wrote to Vault")
			}
			continue
		}
		if n := countRows(t, s, table); n != 0 {
			t.Fatalf("%d rows in %s after invalid requests", n, table)
		}
	}

	// No shared application yet: FailedPrecondition naming the fix.
	_, err = sa.CreateSharedIntegration(org.OperatorCtx, &v1.CreateSharedIntegrationRequest{Parent: tenant.GetName(),
		Integration: &v1.Integration{Kind: defenderKind}})
	wantCode(t, err, codes.FailedPrecondition)

	secret := "org~Shared.Secret_Value_1234567890abcdef"
	resp, err := sa.CreateSharedApplication(org.AdminCtx, &v1.CreateSharedApplicationRequest{Parent: org.Name,
		SharedApplication: &v1.SharedApplication{Kind: defenderKind, ClientId: uuid.NewString()}, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	name := resp.GetSharedApplication().GetName()
	// Another organization: NotFound, never the application.
	_, err = sa.GetSharedApplication(other.AdminCtx, &v1.GetSharedApplicationRequest{Name: name})
	wantCode(t, err, codes.NotFound)
	_, err = sa.GetSharedApplicationConsentLink(org.OperatorCtx, &v1.GetSharedApplicationConsentLinkRequest{Name: name,
		Tenant: other.Name + "/tenants/" + uuid.NewString(), RedirectUri: consentRedirect})
	wantCode(t, err, codes.NotFound)
	list, err := sa.ListSharedApplications(other.ViewerCtx, &v1.ListSharedApplicationsRequest{Parent: other.Name})
	if err != nil || len(list.GetSharedApplications()) != 0 {
		t.Fatalf("other organization lists %v (%v)", list, err)
	}
	// Only an admin registers or changes it.
	_, err = sa.UpdateSharedApplication(org.OperatorCtx, &v1.UpdateSharedApplicationRequest{
		SharedApplication: &v1.SharedApplication{Name: name}, ClientSecret: "operator~Secret.Value_1234567890abcdef"})
	wantCode(t, err, codes.PermissionDenied)
	if strings.Contains(s.Logs.String(), secret) {
		t.Fatal("the logs carry the shared application's secret")
	}
}

// TestSharedModeDzctl walks shared mode with dzctl: the manifest fragment
// (the same as the server's), register, consent link, complete consent, a
// shared integration and its check; the secret never printed.
func TestSharedModeDzctl(t *testing.T) {
	t.Parallel()
	f := newSharedFixture(t)
	run := func(key, stdin string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"DZCONNECT_ADDR": f.s.GRPCAddr, "DZCONNECT_API_KEY": key}
		app := cli.New(strings.NewReader(stdin), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
		if code := app.Execute(context.Background(), args); code != 0 {
			t.Fatalf("dzctl %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
		if strings.Contains(out.String()+errOut.String(), f.app.ClientSecret) {
			t.Fatalf("dzctl %v printed the secret", args)
		}
		return out.String()
	}
	if got, want := run(f.org.Viewer, "", "shared-app", "manifest", "--kind", "defender"),
		sharedapp.ManifestFor(catalog.Default(), integration.KindDefender, nil).JSON()+"\n"; got != want {
		t.Fatalf("dzctl manifest:\n%s\nserver's:\n%s", got, want)
	}
	app := run(f.org.Admin, f.app.ClientSecret+"\n", "shared-app", "create", "--org", f.org.Name, "--kind", "defender",
		"--client-id", f.app.ClientID, "--client-secret-file", "-", "-o", "json")
	if nameOf(t, app) != f.org.Name+"/sharedApplications/microsoft-365-defender" {
		t.Fatalf("created %s", app)
	}
	tenant, _ := f.newCustomer(t, f.org)
	var link struct {
		URL string `json:"url"`
	}
	out := run(f.org.Operator, "", "shared-app", "consent-link", "--tenant", tenant, "--kind", "defender",
		"--redirect-uri", consentRedirect, "-o", "json")
	if err := json.Unmarshal([]byte(out), &link); err != nil || link.URL == "" {
		t.Fatalf("consent-link: %s (%v)", out, err)
	}
	back := f.follow(t, link.URL)
	run(f.org.Operator, "", "tenant", "complete-consent", "--org", f.org.Name, "--redirect-url", consentRedirect+"?"+back.Encode())
	in := nameOf(t, run(f.org.Operator, "", "shared-app", "create-integration", "--tenant", tenant, "--kind", "defender", "-o", "json"))
	if out := run(f.org.Operator, "", "check", in, "-o", "json"); !strings.Contains(out, "INTEGRATION_STATE_HEALTHY") {
		t.Fatalf("check: %s", out)
	}
	if out := run(f.org.Viewer, "", "shared-app", "list", "--org", f.org.Name); !strings.Contains(out, f.app.ClientID) {
		t.Fatalf("list: %s", out)
	}
}

// TestSharedModeREST: the REST mapping of the shared application resource,
// its consent link and CreateSharedIntegration.
func TestSharedModeREST(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	org := s.NewOrg(t, "Shared REST")
	admin, op := rest{t, s.HTTPURL, org.Admin}, rest{t, s.HTTPURL, org.Operator}
	tenant := newTenant(t, s, org.OperatorCtx, org.Name).GetName()
	secret := "rest~Shared.Secret_Value_1234567890abcd"
	clientID := uuid.NewString()

	code, body, _ := admin.do("POST", "/v1/"+org.Name+"/sharedApplications", map[string]any{
		"sharedApplication": map[string]any{"kind": "INTEGRATION_KIND_MICROSOFT_365_DEFENDER", "clientId": clientID},
		"clientSecret":      secret, "requestId": uuid.NewString()})
	if code != 200 || strings.Contains(mustJSON(t, body), secret) {
		t.Fatalf("create: %d %s", code, mustJSON(t, body))
	}
	name := body["sharedApplication"].(map[string]any)["name"].(string)
	etag := body["sharedApplication"].(map[string]any)["etag"].(string)
	if code, body, _ = op.do("GET", "/v1/"+name, nil); code != 200 || body["sharedApplication"].(map[string]any)["clientId"] != clientID {
		t.Fatalf("get: %d %s", code, mustJSON(t, body))
	}
	if code, body, _ = op.do("GET", "/v1/"+org.Name+"/sharedApplications", nil); code != 200 || len(body["sharedApplications"].([]any)) != 1 {
		t.Fatalf("list: %d %s", code, mustJSON(t, body))
	}
	code, body, _ = op.do("GET", "/v1/"+name+":consentLink?tenant="+url.QueryEscape(tenant)+"&redirectUri="+url.QueryEscape(consentRedirect), nil)
	if code != 200 || !strings.Contains(body["url"].(string), "client_id="+clientID) {
		t.Fatalf("consent link: %d %s", code, mustJSON(t, body))
	}
	// Not consented: 400 FAILED_PRECONDITION with the link in the details.
	code, body, _ = op.do("POST", "/v1/"+tenant+"/integrations:createShared", map[string]any{
		"integration": map[string]any{"kind": "INTEGRATION_KIND_MICROSOFT_365_DEFENDER"}})
	if code != 400 || !strings.Contains(mustJSON(t, body), "SHARED_APPLICATION_NOT_CONSENTED") ||
		!strings.Contains(mustJSON(t, body), "admin_consent_link") {
		t.Fatalf("create shared integration: %d %s", code, mustJSON(t, body))
	}
	newSecret := "rest~Shared.Secret_Value_new_1234567890"
	code, body, _ = admin.do("PATCH", "/v1/"+name, map[string]any{"sharedApplication": map[string]any{"etag": etag}, "clientSecret": newSecret})
	if code != 200 || body["sharedApplication"].(map[string]any)["secretVersion"] != "2" {
		t.Fatalf("update: %d %s", code, mustJSON(t, body))
	}
	if code, body, _ = admin.do("DELETE", "/v1/"+name, nil); code != 200 {
		t.Fatalf("delete: %d %s", code, mustJSON(t, body))
	}
	if strings.Contains(s.Logs.String(), secret) || strings.Contains(s.Logs.String(), newSecret) {
		t.Fatal("the logs carry a shared application's secret")
	}
}

// TestSharedModeSweep: the scheduled sweep checks shared integrations like
// the others, with the shared application's credential.
func TestSharedModeSweep(t *testing.T) {
	t.Parallel()
	f := newSharedFixture(t)
	app := f.create(t)
	var want []string
	for range 2 {
		tenant, _ := f.consentIn(t, app)
		want = append(want, f.integrate(t, tenant).GetName())
	}
	stack.Start(t, stack.Options{DatabaseURL: f.s.DatabaseURL, Vault: f.s.Vault,
		ExtraArgs: append(stack.SimArgs(f.sim), "--jobs=true", "--sweep-jitter", "0s", "--settle-window", "1ns")})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A sweep now: the leader's periodic one may have run before the
	// integrations existed (one per period).
	inserter, err := river.NewClient(riverpgxv5.New(f.s.DB), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.Insert(ctx, jobs.SweepArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	for {
		var checked int
		if err := f.s.DB.QueryRow(ctx, `select count(*) from checks where trigger = 'schedule' and outcome = 'healthy'`).Scan(&checked); err != nil {
			t.Fatal(err)
		}
		if checked == len(want) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after 3m: %d healthy scheduled checks, want %d", checked, len(want))
		case <-time.After(100 * time.Millisecond): // polling the database for the outcome, not waiting for it to happen
		}
	}
	for _, name := range want {
		got, err := f.s.Clients().Integrations.GetIntegration(f.org.ViewerCtx, &v1.GetIntegrationRequest{Name: name})
		if err != nil || got.GetIntegration().GetState() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
			t.Fatalf("%s after the sweep: %v (%v)", name, got.GetIntegration().GetState(), err)
		}
	}
}

// TestSharedModeForgedConsentIsNotRecorded: a shared application's consent
// is confirmed with Microsoft before it is recorded, as the provisioner's
// is: the redirect's admin_consent=True forwarded without an administrator
// consenting is refused, nothing is written and the state stays usable; the
// real consent then completes the same state.
func TestSharedModeForgedConsentIsNotRecorded(t *testing.T) {
	t.Parallel()
	f := newSharedFixtureArgs(t, []string{"--consent-confirm-wait=2s"})
	app := f.create(t)
	tenant, simTID := f.newCustomer(t, f.org)
	link, u := f.consentLink(t, app, tenant)
	state := u.Query().Get("state")
	before := snapshot(t, f.s)
	c := f.s.Clients()
	_, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, &v1.CompleteAdminConsentRequest{Parent: f.org.Name, State: state,
		AdminConsent: "True", Tenant: simTID, RedirectUri: consentRedirect})
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "the shared microsoft-365-defender application "+f.app.ClientID) ||
		!strings.Contains(st.Message(), "no service principal") || !strings.Contains(st.Message(), "AADSTS700016") {
		t.Fatalf("forged completion: %q", st.Message())
	}
	if reason := errorReason(err); reason != "ADMIN_CONSENT_UNCONFIRMED" {
		t.Fatalf("reason %q", reason)
	}
	if after := snapshot(t, f.s); !equalCounts(before, after) {
		t.Fatalf("a forged completion wrote:\nbefore %v\nafter  %v", before, after)
	}
	if used, _ := consentRow(t, f.s, state); used {
		t.Fatal("a forged completion spent the state")
	}
	_, err = f.sa.CreateSharedIntegration(f.org.OperatorCtx, &v1.CreateSharedIntegrationRequest{Parent: tenant,
		Integration: &v1.Integration{Kind: defenderKind, DisplayName: "not yet"}, RequestId: uuid.NewString()})
	if reason := errorReason(err); reason != "SHARED_APPLICATION_NOT_CONSENTED" {
		t.Fatalf("integration after a forged consent: %v (reason %q)", err, reason)
	}

	// The administrator consents at Microsoft: the same state completes.
	back := f.follow(t, link.GetUrl())
	if back.Get("state") != state || back.Get("admin_consent") != "True" {
		t.Fatalf("redirect %v", back)
	}
	if _, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)); err != nil {
		t.Fatalf("CompleteAdminConsent after the real consent: %v", err)
	}
	f.integrate(t, tenant)
}
