package e2e

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

const consentRedirect = "https://dzconnect.example/consent/callback"

// consentFixture is a dzconnect server pointed at msftsim, with an
// organization whose provisioner application is registered in its home
// tenant, and one customer tenant known to both.
type consentFixture struct {
	s      *stack.Stack
	sim    *msftsim.Sim
	org    stack.Org
	prov   msftsim.AppCreds
	tenant string // dzconnect tenant name
	simTID string // its Entra tenant ID
}

func newConsentFixture(t *testing.T) consentFixture {
	t.Helper()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	f := consentFixture{s: s, sim: sim}
	f.org, f.prov = f.newProvisionedOrg(t, "Provisioned")
	f.tenant, f.simTID = f.newCustomer(t, f.org)
	return f
}

// newProvisionedOrg creates an organization and registers its provisioner.
func (f consentFixture) newProvisionedOrg(t *testing.T, displayName string) (stack.Org, msftsim.AppCreds) {
	t.Helper()
	prov, err := f.sim.Admin().RegisterProvisioner(uuid.NewString(), msftsim.AppRequest{DisplayName: displayName + " Provisioner",
		RequestedRoles: []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}})
	if err != nil {
		t.Fatal(err)
	}
	org := f.s.NewOrg(t, displayName)
	if _, err := f.s.Clients().Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
		Name: org.Name, ClientId: prov.ClientID, ClientSecret: prov.ClientSecret}); err != nil {
		t.Fatalf("SetOrganizationProvisioner: %v", err)
	}
	return org, prov
}

// newCustomer adds a customer tenant to msftsim and to org.
func (f consentFixture) newCustomer(t *testing.T, org stack.Org) (string, string) {
	t.Helper()
	info, err := f.sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: "Customer"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.s.Clients().Tenants.CreateTenant(org.OperatorCtx, &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{
		EntraTenantId: info.ID, Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Customer"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetTenant().GetName(), info.ID
}

func (f consentFixture) link(t *testing.T, ctx context.Context, tenant string) *v1.GetAdminConsentLinkResponse {
	t.Helper()
	resp, err := f.s.Clients().Tenants.GetAdminConsentLink(ctx, &v1.GetAdminConsentLinkRequest{Name: tenant, RedirectUri: consentRedirect})
	if err != nil {
		t.Fatalf("GetAdminConsentLink: %v", err)
	}
	return resp
}

// follow opens link as the tenant administrator's browser would, and
// returns the query of the redirect back (not followed).
func (f consentFixture) follow(t *testing.T, link string) url.Values {
	t.Helper()
	hc := f.sim.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("admin consent: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != consentRedirect {
		t.Fatalf("admin consent redirected to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

// completeReq forwards the redirect's parameters as a service serving
// consentRedirect would: with the URL it arrived at and the scope.
func completeReq(parent string, q url.Values) *v1.CompleteAdminConsentRequest {
	return &v1.CompleteAdminConsentRequest{Parent: parent, State: q.Get("state"), AdminConsent: q.Get("admin_consent"),
		Tenant: q.Get("tenant"), Error: q.Get("error"), ErrorDescription: q.Get("error_description"),
		Scope: q.Get("scope"), RedirectUri: consentRedirect}
}

// consentRow reads the recorded request of a state.
func consentRow(t *testing.T, s *stack.Stack, state string) (used bool, result string) {
	t.Helper()
	h := sha256.Sum256([]byte(state))
	var res *string
	var usedTime *time.Time
	if err := s.DB.QueryRow(context.Background(), `select used_time, result from admin_consent_requests where state_hash = $1`, h[:]).
		Scan(&usedTime, &res); err != nil {
		t.Fatalf("consent request of the state: %v", err)
	}
	if res != nil {
		result = *res
	}
	return usedTime != nil, result
}

func provisionerSecretAt(t *testing.T, s *stack.Stack, org string, version int) (string, bool) {
	t.Helper()
	n, err := resource.ParseOrg("name", org)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.Vault.KV().GetVersion(context.Background(), "dzconnect/"+consent.ProvisionerSecretPath(n.Org), version)
	if err != nil {
		return "", false
	}
	v, _ := sec.Data["client_secret"].(string)
	return v, true
}

func TestProvisionerAdminConsent(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()

	// The provisioner: client ID on the organization, secret in Vault only.
	o, err := c.Orgs.GetOrganization(f.org.ViewerCtx, &v1.GetOrganizationRequest{Name: f.org.Name})
	if err != nil {
		t.Fatal(err)
	}
	if o.GetOrganization().GetProvisionerClientId() != f.prov.ClientID {
		t.Fatalf("provisioner_client_id %q, want %s", o.GetOrganization().GetProvisionerClientId(), f.prov.ClientID)
	}
	if v, ok := provisionerSecretAt(t, f.s, f.org.Name, 1); !ok || v != f.prov.ClientSecret {
		t.Fatal("the provisioner secret is not in Vault")
	}
	// Only an admin sets it.
	_, err = c.Orgs.SetOrganizationProvisioner(f.org.OperatorCtx, &v1.SetOrganizationProvisionerRequest{
		Name: f.org.Name, ClientId: uuid.NewString(), ClientSecret: "operator~Secret.Value_1234567890abcdef"})
	wantCode(t, err, codes.PermissionDenied)

	before, err := c.Tenants.GetTenant(f.org.ViewerCtx, &v1.GetTenantRequest{Name: f.tenant})
	if err != nil || before.GetTenant().GetProvisionerConsentTime() != nil {
		t.Fatalf("tenant before consent: %v, %v", before, err)
	}

	// The link: the tenant's authority, the provisioner, Graph, a fresh state.
	start := time.Now()
	link := f.link(t, f.org.OperatorCtx, f.tenant)
	u, err := url.Parse(link.GetUrl())
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := strings.TrimSuffix(f.sim.Endpoints().Authority, "/") + "/" + f.simTID + "/v2.0/adminconsent?"
	q := u.Query()
	if !strings.HasPrefix(link.GetUrl(), wantPrefix) || q.Get("client_id") != f.prov.ClientID ||
		q.Get("scope") != "https://graph.microsoft.com/.default" || q.Get("redirect_uri") != consentRedirect || len(q.Get("state")) != 43 {
		t.Fatalf("link %s", link.GetUrl())
	}
	if exp := link.GetExpireTime().AsTime(); exp.Before(start.Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("expire_time %v, want in an hour", exp)
	}
	if again := f.link(t, f.org.OperatorCtx, f.tenant); again.GetUrl() == link.GetUrl() {
		t.Fatal("two links share a state")
	}

	// The administrator consents; the redirect is forwarded.
	back := f.follow(t, link.GetUrl())
	if back.Get("admin_consent") != "True" || back.Get("tenant") != f.simTID || back.Get("state") != q.Get("state") {
		t.Fatalf("redirect %v", back)
	}
	if _, ok := f.sim.Admin().ServicePrincipalID(f.simTID, f.prov.ClientID); !ok {
		t.Fatal("msftsim: no provisioner service principal after consent")
	}
	done, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	if err != nil {
		t.Fatalf("CompleteAdminConsent: %v", err)
	}
	ct := done.GetTenant().GetProvisionerConsentTime()
	if done.GetTenant().GetName() != f.tenant || ct == nil || ct.AsTime().Before(start.Add(-time.Minute)) {
		t.Fatalf("completed tenant %v", done.GetTenant())
	}
	got, err := c.Tenants.GetTenant(f.org.ViewerCtx, &v1.GetTenantRequest{Name: f.tenant})
	if err != nil || !proto.Equal(got.GetTenant().GetProvisionerConsentTime(), ct) {
		t.Fatalf("GetTenant after consent: %v, %v", got, err)
	}
	if used, result := consentRow(t, f.s, back.Get("state")); !used || result != "consented" {
		t.Fatalf("request used=%v result=%q", used, result)
	}

	// The state works once.
	_, err = c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	wantViolation(t, err, "state")
	if !strings.Contains(wantCode(t, err, codes.InvalidArgument).Message(), "already used") {
		t.Fatalf("replay: %v", err)
	}
	// A viewer cannot complete one.
	_, err = c.Tenants.CompleteAdminConsent(f.org.ViewerCtx, completeReq(f.org.Name, back))
	wantCode(t, err, codes.PermissionDenied)

	// Every write is audited.
	audit, err := c.Audit.ListAuditEvents(f.org.AdminCtx, &v1.ListAuditEventsRequest{Parent: f.org.Name})
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, e := range audit.GetAuditEvents() {
		methods = append(methods, e.GetMethod()[strings.LastIndex(e.GetMethod(), "/")+1:]+" "+e.GetResource())
	}
	for _, want := range []string{"SetOrganizationProvisioner " + f.org.Name, "GetAdminConsentLink " + f.tenant, "CompleteAdminConsent " + f.tenant} {
		if !slices.Contains(methods, want) {
			t.Errorf("no audit event %q in %v", want, methods)
		}
	}

	// REST: the same flow through the gateway.
	op := rest{t, f.s.HTTPURL, f.org.Operator}
	code, out, _ := op.do("GET", "/v1/"+f.tenant+":adminConsentLink?redirectUri="+url.QueryEscape(consentRedirect), nil)
	restURL, _ := out["url"].(string)
	if code != http.StatusOK || restURL == "" {
		t.Fatalf("REST link: %d %v", code, out)
	}
	back = f.follow(t, restURL)
	code, out, _ = op.do("POST", "/v1/"+f.org.Name+"/tenants:completeAdminConsent", map[string]any{
		"state": back.Get("state"), "adminConsent": back.Get("admin_consent"), "tenant": back.Get("tenant"),
		"scope": back.Get("scope"), "redirectUri": consentRedirect})
	if tn, _ := out["tenant"].(map[string]any); code != http.StatusOK || tn["provisionerConsentTime"] == nil {
		t.Fatalf("REST complete: %d %v", code, out)
	}
}

func TestProvisionerConsentTenantMismatch(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()
	// The link is for the customer tenant; the consent comes back from another.
	other, err := f.sim.Admin().AddTenant(msftsim.TenantSpec{DisplayName: "Attacker"})
	if err != nil {
		t.Fatal(err)
	}
	link := f.link(t, f.org.OperatorCtx, f.tenant)
	redirected := strings.Replace(link.GetUrl(), "/"+f.simTID+"/", "/"+other.ID+"/", 1)
	back := f.follow(t, redirected)
	if back.Get("admin_consent") != "True" || back.Get("tenant") != other.ID {
		t.Fatalf("redirect %v", back)
	}
	_, err = c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), other.ID) || !strings.Contains(st.Message(), f.simTID) {
		t.Fatalf("message %q names neither tenant", st.Message())
	}
	if used, result := consentRow(t, f.s, back.Get("state")); !used || result != "tenant-mismatch" {
		t.Fatalf("request used=%v result=%q", used, result)
	}
	got, err := c.Tenants.GetTenant(f.org.ViewerCtx, &v1.GetTenantRequest{Name: f.tenant})
	if err != nil || got.GetTenant().GetProvisionerConsentTime() != nil {
		t.Fatalf("tenant after mismatch: %v, %v", got, err)
	}
	// The state is spent: forwarding the "right" tenant now changes nothing.
	back.Set("tenant", f.simTID)
	_, err = c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	wantViolation(t, err, "state")
}

func TestProvisionerConsentDenied(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()
	if err := f.sim.Admin().DenyAdminConsent(f.simTID, true); err != nil {
		t.Fatal(err)
	}
	link := f.link(t, f.org.OperatorCtx, f.tenant)
	back := f.follow(t, link.GetUrl())
	if back.Get("error") != "access_denied" || back.Get("admin_consent") != "False" {
		t.Fatalf("redirect %v", back)
	}
	_, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "access_denied") || !strings.Contains(st.Message(), "AADSTS65004") {
		t.Fatalf("message %q does not carry Microsoft's error", st.Message())
	}
	if used, result := consentRow(t, f.s, back.Get("state")); !used || result != "declined" {
		t.Fatalf("request used=%v result=%q", used, result)
	}
	got, err := c.Tenants.GetTenant(f.org.ViewerCtx, &v1.GetTenantRequest{Name: f.tenant})
	if err != nil || got.GetTenant().GetProvisionerConsentTime() != nil {
		t.Fatalf("tenant after refusal: %v, %v", got, err)
	}
	// The administrator changes their mind: a new link works.
	if err := f.sim.Admin().DenyAdminConsent(f.simTID, false); err != nil {
		t.Fatal(err)
	}
	back = f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	if _, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)); err != nil {
		t.Fatalf("CompleteAdminConsent after a refusal: %v", err)
	}
}

// TestProvisionerConsentOtherOrganization: a state issued for another
// organization's tenant is unknown to this organization, and completing it
// through the other organization's name is refused before anything runs.
func TestProvisionerConsentOtherOrganization(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()
	b, _ := f.newProvisionedOrg(t, "Other")
	bTenant, bTID := f.newCustomer(t, b)
	back := f.follow(t, f.link(t, b.OperatorCtx, bTenant).GetUrl())
	if back.Get("tenant") != bTID {
		t.Fatalf("redirect %v", back)
	}

	before := snapshot(t, f.s)
	beforeReq := countRows(t, f.s, "admin_consent_requests")
	_, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	wantViolation(t, err, "state")
	_, err = c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(b.Name, back))
	wantCode(t, err, codes.NotFound)
	_, err = c.Tenants.GetAdminConsentLink(f.org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: bTenant, RedirectUri: consentRedirect})
	wantCode(t, err, codes.NotFound)
	_, err = c.Orgs.SetOrganizationProvisioner(f.org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
		Name: b.Name, ClientId: uuid.NewString(), ClientSecret: "intruder~Secret.Value_1234567890abcdef"})
	wantCode(t, err, codes.NotFound)
	if after := snapshot(t, f.s); !equalCounts(before, after) || countRows(t, f.s, "admin_consent_requests") != beforeReq {
		t.Fatalf("the other organization's calls wrote:\nbefore %v\nafter  %v", before, after)
	}
	if used, _ := consentRow(t, f.s, back.Get("state")); used {
		t.Fatal("another organization spent the state")
	}
	if _, ok := provisionerSecretAt(t, f.s, b.Name, 2); ok {
		t.Fatal("another organization wrote a provisioner secret version")
	}
	// Its own organization still completes it.
	done, err := c.Tenants.CompleteAdminConsent(b.OperatorCtx, completeReq(b.Name, back))
	if err != nil || done.GetTenant().GetName() != bTenant {
		t.Fatalf("CompleteAdminConsent by its organization: %v, %v", done, err)
	}
}

func TestProvisionerInvalidInput(t *testing.T) {
	t.Parallel()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	c := s.Clients()
	org := s.NewOrg(t, "Invalid")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	before := snapshot(t, s)

	_, err := c.Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{Name: org.Name, ClientId: "nope"})
	for _, f := range []string{"client_id", "client_secret"} {
		wantViolation(t, err, f)
	}
	_, err = c.Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{Name: org.Name,
		ClientId: uuid.NewString(), ClientSecret: uuid.NewString()})
	wantViolation(t, err, "client_secret")
	_, err = c.Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{Name: "organizations/x",
		ClientId: uuid.NewString(), ClientSecret: "valid~Secret.Value_1234567890abcdef"})
	wantCode(t, err, codes.InvalidArgument)

	for _, uri := range []string{"", "http://app.example.com/cb", "/relative", "https://user@app.example.com/cb",
		"https://app.example.com/cb#frag", "javascript:alert(1)", "https://app.example.com/" + strings.Repeat("a", 300)} {
		_, err = c.Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: tenant.GetName(), RedirectUri: uri})
		wantViolation(t, err, "redirect_uri")
	}
	_, err = c.Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: "tenants/x", RedirectUri: consentRedirect})
	wantViolation(t, err, "name")
	// No provisioner yet: FailedPrecondition, nothing written.
	_, err = c.Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: tenant.GetName(), RedirectUri: "http://localhost:8080/cb"})
	wantCode(t, err, codes.FailedPrecondition)

	good := strings.Repeat("A", 43)
	for _, tc := range []struct {
		req   *v1.CompleteAdminConsentRequest
		field string
	}{
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, AdminConsent: "True", Tenant: uuid.NewString()}, "state"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: "short", AdminConsent: "True"}, "state"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: strings.Repeat("+", 43), AdminConsent: "True"}, "state"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: good}, "admin_consent"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: good, AdminConsent: "True"}, "tenant"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: good, Error: "x", ErrorDescription: "line\nbreak"}, "error_description"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: good, AdminConsent: "True", Tenant: strings.Repeat("t", 100)}, "tenant"},
		{&v1.CompleteAdminConsentRequest{Parent: "nope", State: good, AdminConsent: "True"}, "parent"},
		// Well-formed but never issued.
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: good, AdminConsent: "True", Tenant: tenant.GetEntraTenantId(),
			RedirectUri: consentRedirect}, "state"},
		{&v1.CompleteAdminConsentRequest{Parent: org.Name, State: good, AdminConsent: "True", Tenant: tenant.GetEntraTenantId()}, "redirect_uri"},
	} {
		_, err := c.Tenants.CompleteAdminConsent(org.OperatorCtx, tc.req)
		wantViolation(t, err, tc.field)
	}
	if after := snapshot(t, s); !equalCounts(before, after) || countRows(t, s, "admin_consent_requests") != 0 {
		t.Fatalf("invalid requests wrote:\nbefore %v\nafter  %v", before, after)
	}
	if _, ok := provisionerSecretAt(t, s, org.Name, 1); ok {
		t.Fatal("an invalid request wrote a provisioner secret")
	}

	// An expired state is refused and stays unused.
	prov, err := sim.Admin().RegisterProvisioner(uuid.NewString(), msftsim.AppRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
		Name: org.Name, ClientId: prov.ClientID, ClientSecret: prov.ClientSecret}); err != nil {
		t.Fatal(err)
	}
	link, err := c.Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: tenant.GetName(), RedirectUri: "http://127.0.0.1:9/cb"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link.GetUrl())
	state := u.Query().Get("state")
	if _, err := s.DB.Exec(context.Background(), `update admin_consent_requests set expire_time = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	_, err = c.Tenants.CompleteAdminConsent(org.OperatorCtx, &v1.CompleteAdminConsentRequest{Parent: org.Name, State: state,
		AdminConsent: "True", Tenant: tenant.GetEntraTenantId(), RedirectUri: "http://127.0.0.1:9/cb"})
	wantViolation(t, err, "state")
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired state: %v", err)
	}
	if used, _ := consentRow(t, s, state); used {
		t.Fatal("an expired state was marked used")
	}
	// A day later the next link drops it.
	if _, err := s.DB.Exec(context.Background(), `update admin_consent_requests set expire_time = now() - interval '25 hours'`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: tenant.GetName(), RedirectUri: "http://localhost/cb"}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "admin_consent_requests"); n != 1 {
		t.Fatalf("%d consent requests, want the new one only", n)
	}
}

// TestProvisionerSecretNeverLeaks extends the canary check to the
// provisioner secret and to the consent state.
func TestProvisionerSecretNeverLeaks(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()
	canaries := []string{
		"PCANARY1~" + strings.ReplaceAll(uuid.NewString(), "-", ""),
		"PCANARY2~" + strings.ReplaceAll(uuid.NewString(), "-", ""),
	}
	var responses []string
	record := func(m proto.Message, err error) {
		if m != nil {
			responses = append(responses, protojson.Format(m))
		}
		if err != nil {
			responses = append(responses, err.Error())
		}
	}
	set := func(ctx context.Context, org, secret string) {
		record(c.Orgs.SetOrganizationProvisioner(ctx, &v1.SetOrganizationProvisionerRequest{Name: org, ClientId: f.prov.ClientID, ClientSecret: secret}))
	}
	set(f.org.AdminCtx, f.org.Name, canaries[0])
	set(f.org.AdminCtx, f.org.Name, canaries[1]+" with a space")
	set(f.org.OperatorCtx, f.org.Name, canaries[1])
	other := f.s.NewOrg(t, "Intruder")
	set(other.AdminCtx, f.org.Name, canaries[1])
	record(c.Orgs.GetOrganization(f.org.ViewerCtx, &v1.GetOrganizationRequest{Name: f.org.Name}))
	record(c.Orgs.ListOrganizations(f.s.Admin(t), &v1.ListOrganizationsRequest{}))
	adm := rest{t, f.s.HTTPURL, f.org.Admin}
	_, out, h := adm.do("POST", "/v1/"+f.org.Name+":setProvisioner", map[string]any{"clientId": f.prov.ClientID, "clientSecret": canaries[1]})
	responses = append(responses, mustJSON(t, out), headerString(h))
	_, out, h = adm.do("POST", "/v1/"+f.org.Name+":setProvisioner", map[string]any{"clientId": "bad", "clientSecret": canaries[1] + " x"})
	responses = append(responses, mustJSON(t, out), headerString(h))

	// Versions 1 (setup), 2 and 3 (canaries) are in Vault.
	for v, want := range map[int]string{2: canaries[0], 3: canaries[1]} {
		if got, ok := provisionerSecretAt(t, f.s, f.org.Name, v); !ok || got != want {
			t.Fatalf("Vault version %d is not the canary", v)
		}
	}

	// A consent round trip: the state is in the link and the redirect only.
	back := f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	record(c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)))
	record(c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)))
	state := back.Get("state")

	dump := dumpDatabase(t, f.s)
	logs := f.s.Logs.String()
	if !strings.Contains(logs, "SetOrganizationProvisioner") || !strings.Contains(logs, "CompleteAdminConsent") ||
		!strings.Contains(dump, f.prov.ClientID) {
		t.Fatal("the dump or the logs are empty: the canary check would prove nothing")
	}
	for _, secret := range append(canaries, f.prov.ClientSecret) {
		if strings.Contains(dump, secret) {
			t.Errorf("secret %.12s… found in the Postgres dump", secret)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("secret %.12s… found in the logs", secret)
		}
		for _, r := range responses {
			if strings.Contains(r, secret) {
				t.Errorf("secret %.12s… found in a response: %.200s", secret, r)
			}
		}
	}
	if strings.Contains(dump, state) || strings.Contains(logs, state) {
		t.Error("the consent state is stored or logged in the clear")
	}
	h256 := sha256.Sum256([]byte(state))
	var n int
	if err := f.s.DB.QueryRow(context.Background(), `select count(*) from admin_consent_requests where state_hash = $1`, h256[:]).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the state's hash is not stored: %d, %v", n, err)
	}
}

// TestProvisionerConsentFeedsChecks: once a tenant consented the
// provisioner, checks read the integration's granted permissions from
// Entra's app role assignments with it, not from the token's roles.
func TestProvisionerConsentFeedsChecks(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()
	creds, err := f.sim.Admin().CreateApp(f.simTID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles})
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.Integrations.CreateIntegration(f.org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: f.tenant,
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: creds.ClientID}},
		ClientSecret: creds.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	check := func() *v1.Check {
		t.Helper()
		resp, err := c.Integrations.CheckIntegration(f.org.OperatorCtx, &v1.CheckIntegrationRequest{Name: in.GetIntegration().GetName()})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetCheck()
	}
	if src := check().GetPermissions().GetSource(); src != "token-roles" {
		t.Fatalf("before consent: permissions from %q", src)
	}
	back := f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	if _, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)); err != nil {
		t.Fatal(err)
	}
	ch := check()
	if p := ch.GetPermissions(); p.GetSource() != "entra-app-role-assignments" || len(p.GetMissingRequired()) != 0 {
		t.Fatalf("after consent: %v\n%s", p, describe(ch))
	}
}

// TestProvisionerSecretDestroyedWithOrganization: deleting the
// organization queues its provisioner secret's destruction in the same
// transaction; the janitor destroys every version.
func TestProvisionerSecretDestroyedWithOrganization(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--janitor-interval", "200ms"}})
	c := s.Clients()
	org := s.NewOrg(t, "Leaving")
	for range 2 {
		if _, err := c.Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
			Name: org.Name, ClientId: uuid.NewString(), ClientSecret: "leaving~Secret.Value_1234567890abcdef"}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := c.Orgs.GetOrganization(org.ViewerCtx, &v1.GetOrganizationRequest{Name: org.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := provisionerSecretAt(t, s, org.Name, 2); !ok {
		t.Fatal("no second provisioner secret version")
	}
	if _, err := c.Orgs.DeleteOrganization(s.Admin(t), &v1.DeleteOrganizationRequest{Name: org.Name, Etag: o.GetOrganization().GetEtag()}); err != nil {
		t.Fatal(err)
	}
	n, _ := resource.ParseOrg("name", org.Name)
	// The deletion queued the secret's destruction (destroy_secret jobs).
	waitJobs(t, s, "destroy_secret")
	if _, err := s.Vault.KV().GetMetadata(context.Background(), "dzconnect/"+consent.ProvisionerSecretPath(n.Org)); err == nil {
		t.Fatal("the provisioner secret survived the organization")
	}
}

// TestProvisionerReplaced: a new secret for the same provisioner keeps the
// tenants' consent; another application clears it and drops the links
// still outstanding (they name the previous application).
func TestProvisionerReplaced(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	c := f.s.Clients()
	back := f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	if _, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)); err != nil {
		t.Fatal(err)
	}
	pending := f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	set := func(clientID, secret string) {
		t.Helper()
		if _, err := c.Orgs.SetOrganizationProvisioner(f.org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
			Name: f.org.Name, ClientId: clientID, ClientSecret: secret}); err != nil {
			t.Fatal(err)
		}
	}
	consentTime := func() *time.Time {
		t.Helper()
		got, err := c.Tenants.GetTenant(f.org.ViewerCtx, &v1.GetTenantRequest{Name: f.tenant})
		if err != nil {
			t.Fatal(err)
		}
		if ct := got.GetTenant().GetProvisionerConsentTime(); ct != nil {
			tm := ct.AsTime()
			return &tm
		}
		return nil
	}

	set(f.prov.ClientID, "rotated~Secret.Value_1234567890abcdef")
	if consentTime() == nil {
		t.Fatal("a secret rotation cleared the consent")
	}
	if v, ok := provisionerSecretAt(t, f.s, f.org.Name, 2); !ok || v != "rotated~Secret.Value_1234567890abcdef" {
		t.Fatal("the rotated secret is not Vault's version 2")
	}

	other, err := f.sim.Admin().RegisterProvisioner(uuid.NewString(), msftsim.AppRequest{DisplayName: "Replacement"})
	if err != nil {
		t.Fatal(err)
	}
	set(other.ClientID, other.ClientSecret)
	if ct := consentTime(); ct != nil {
		t.Fatalf("consent of the previous provisioner kept: %v", ct)
	}
	_, err = c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, pending))
	wantViolation(t, err, "state")
	audit, err := c.Audit.ListAuditEvents(f.org.AdminCtx, &v1.ListAuditEventsRequest{Parent: f.org.Name, Resource: f.tenant})
	if err != nil {
		t.Fatal(err)
	}
	if ev := audit.GetAuditEvents(); len(ev) == 0 || !strings.HasSuffix(ev[0].GetMethod(), "/SetOrganizationProvisioner") {
		t.Fatalf("no audit event for the cleared tenant: %v", ev)
	}
}
