package e2e

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/simtest"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// orgWithProvisioner registers a provisioner requesting roles and an
// organization using it, with one customer tenant.
func (f consentFixture) orgWithProvisioner(t *testing.T, name string, roles []string) (stack.Org, string) {
	t.Helper()
	prov, err := f.sim.Admin().RegisterProvisioner(uuid.NewString(), msftsim.AppRequest{DisplayName: name, RequestedRoles: roles})
	if err != nil {
		t.Fatal(err)
	}
	org := f.s.NewOrg(t, name)
	if _, err := f.s.Clients().Orgs.SetOrganizationProvisioner(org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
		Name: org.Name, ClientId: prov.ClientID, ClientSecret: prov.ClientSecret}); err != nil {
		t.Fatal(err)
	}
	tenant, _ := f.newCustomer(t, org)
	return org, tenant
}

func consentScope(t *testing.T, s *stack.Stack, state string) string {
	t.Helper()
	var scope *string
	if err := s.DB.QueryRow(context.Background(), `select scope from admin_consent_requests where state_hash = sha256($1::bytea)`,
		[]byte(state)).Scan(&scope); err != nil {
		t.Fatal(err)
	}
	if scope == nil {
		return ""
	}
	return *scope
}

// Completion must come back to the link's redirect URI (else nothing is
// written and the state stays usable); admin_consent is read
// case-insensitively; the scope Microsoft returns is recorded; the
// provisioner's own missing permissions are reported with the remedy.
func TestAdminConsentDetails(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t) // provisioner requests Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All
	c := f.s.Clients()
	back := f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	if back.Get("scope") == "" {
		t.Fatal("msftsim's redirect carries no scope")
	}

	for _, other := range []string{"https://evil.example/consent/callback", consentRedirect + "/x", "http://dzconnect.example/consent/callback"} {
		req := completeReq(f.org.Name, back)
		req.RedirectUri = other
		_, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, req)
		wantViolation(t, err, "redirect_uri")
		if used, _ := consentRow(t, f.s, back.Get("state")); used {
			t.Fatalf("a completion at %s spent the state", other)
		}
	}

	req := completeReq(f.org.Name, back)
	req.AdminConsent = "true" // as some forwarders lower-case it
	req.RedirectUri = consentRedirect + "?" + back.Encode()
	done, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, req)
	if err != nil {
		t.Fatalf("CompleteAdminConsent: %v", err)
	}
	if done.GetTenant().GetProvisionerConsentTime() == nil {
		t.Fatalf("consent not recorded: %v", done.GetTenant())
	}
	if got := consentScope(t, f.s, back.Get("state")); got != back.Get("scope") {
		t.Fatalf("recorded scope %q, want %q", got, back.Get("scope"))
	}
	p := done.GetProvisionerPermissions()
	if !slices.Equal(p.GetMissing(), []string{"Policy.Read.All"}) || !slices.Contains(p.GetGranted(), "Application.ReadWrite.All") || !strings.Contains(p.GetRemedy(), "Policy.Read.All") || p.GetError() != "" {
		t.Fatalf("provisioner permissions %v", p)
	}
}

// The least-privilege provisioner (docs/provisioner.md) misses nothing; one
// that cannot read its own grants is told it lacks Application.Read.All.
func TestAdminConsentProvisionerPermissions(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	for _, tc := range []struct {
		name    string
		roles   []string
		missing []string
		readErr bool
	}{
		{"least privilege", simtest.ProvisionerRoles, nil, false},
		{"cannot read its grants", []string{"Policy.Read.All"}, []string{"Application.Read.All"}, true},
	} {
		org, tenant := f.orgWithProvisioner(t, tc.name, tc.roles)
		link, err := f.s.Clients().Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: tenant, RedirectUri: consentRedirect})
		if err != nil {
			t.Fatal(err)
		}
		done, err := f.s.Clients().Tenants.CompleteAdminConsent(org.OperatorCtx, completeReq(org.Name, f.follow(t, link.GetUrl())))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		p := done.GetProvisionerPermissions()
		if !slices.Equal(p.GetMissing(), tc.missing) || (p.GetError() != "") != tc.readErr || (len(tc.missing) > 0) != (p.GetRemedy() != "") {
			t.Fatalf("%s: provisioner permissions %v", tc.name, p)
		}
		if done.GetTenant().GetProvisionerConsentTime() == nil {
			t.Fatalf("%s: the consent was not recorded", tc.name)
		}
	}
	// A declined consent is still declined whatever the case of the answer.
	org, tenant := f.orgWithProvisioner(t, "declined", simtest.ProvisionerRoles)
	link, err := f.s.Clients().Tenants.GetAdminConsentLink(org.OperatorCtx, &v1.GetAdminConsentLinkRequest{Name: tenant, RedirectUri: consentRedirect})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link.GetUrl())
	_, err = f.s.Clients().Tenants.CompleteAdminConsent(org.OperatorCtx, &v1.CompleteAdminConsentRequest{Parent: org.Name,
		State: u.Query().Get("state"), AdminConsent: "FALSE", Tenant: uuid.NewString(), RedirectUri: consentRedirect})
	wantCode(t, err, codes.FailedPrecondition)
}

// A forged completion (admin_consent=True forwarded by whoever holds the
// link, without an administrator consenting at Microsoft) is not recorded:
// Microsoft does not confirm it (the provisioner has no service principal
// in the tenant), nothing is written and the state stays usable; once an
// administrator really consents, the same state completes (issue 11 item
// 12k).
func TestAdminConsentForgedIsNotRecorded(t *testing.T) {
	t.Parallel()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: append(stack.SimArgs(sim), "--consent-confirm-wait=2s")})
	f := consentFixture{s: s, sim: sim}
	f.org, f.prov = f.newProvisionedOrg(t, "Forged")
	f.tenant, f.simTID = f.newCustomer(t, f.org)
	c := s.Clients()
	link := f.link(t, f.org.OperatorCtx, f.tenant)
	u, err := url.Parse(link.GetUrl())
	if err != nil {
		t.Fatal(err)
	}
	state := u.Query().Get("state")
	before := snapshot(t, s)
	_, err = c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, &v1.CompleteAdminConsentRequest{Parent: f.org.Name, State: state,
		AdminConsent: "True", Tenant: f.simTID, RedirectUri: consentRedirect})
	st := wantCode(t, err, codes.FailedPrecondition)
	// Entra answers an application never consented in the tenant with
	// AADSTS700016 ("not found in the directory ... not installed by the
	// administrator of the tenant"), msftsim as well.
	if !strings.Contains(st.Message(), "no service principal") || !strings.Contains(st.Message(), "AADSTS700016") {
		t.Fatalf("forged completion: %q", st.Message())
	}
	if reason := errorReason(err); reason != "ADMIN_CONSENT_UNCONFIRMED" {
		t.Fatalf("reason %q", reason)
	}
	if after := snapshot(t, s); !equalCounts(before, after) {
		t.Fatalf("a forged completion wrote:\nbefore %v\nafter  %v", before, after)
	}
	if used, _ := consentRow(t, s, state); used {
		t.Fatal("a forged completion spent the state")
	}
	got, err := c.Tenants.GetTenant(f.org.OperatorCtx, &v1.GetTenantRequest{Name: f.tenant})
	if err != nil || got.GetTenant().GetProvisionerConsentTime() != nil {
		t.Fatalf("tenant after a forged completion: %v, %v", got, err)
	}

	// The administrator consents at Microsoft: the same state completes.
	back := f.follow(t, link.GetUrl())
	if back.Get("state") != state {
		t.Fatal("the redirect carries another state")
	}
	done, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back))
	if err != nil {
		t.Fatalf("CompleteAdminConsent after the real consent: %v", err)
	}
	if done.GetTenant().GetProvisionerConsentTime() == nil {
		t.Fatal("the confirmed consent was not recorded")
	}
}
