package msftsim_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

func TestAdminConsentLink(t *testing.T) {
	e := newEnv(t)
	p, err := e.admin.RegisterProvisioner(homeTenant, msftsim.AppRequest{DisplayName: "Dropzone Provisioner",
		RequestedRoles: []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "log_analytics/Data.Read"}})
	if err != nil {
		t.Fatal(err)
	}
	hc := e.sim.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	consent := func(tenant string) *url.URL {
		t.Helper()
		link := e.ep.Authority + tenant + "/v2.0/adminconsent?client_id=" + p.ClientID +
			"&scope=" + url.QueryEscape("https://graph.microsoft.com/.default") +
			"&redirect_uri=" + url.QueryEscape("https://dzconnect.example/consent/callback") + "&state=s-123"
		resp, err := hc.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc
	}
	// Before consent the provisioner has no service principal in the tenant.
	_, err = e.token(e.secretCred(e.tenant, p.ClientID, p.ClientSecret), msftsim.ResourceGraph)
	aadsts(t, err, 700016)

	loc := consent(e.tenant)
	q := loc.Query()
	if loc.Host != "dzconnect.example" || q.Get("admin_consent") != "True" || q.Get("tenant") != e.tenant || q.Get("state") != "s-123" {
		t.Fatalf("callback %s", loc)
	}
	m := claims(t, e.mustToken(e.secretCred(e.tenant, p.ClientID, p.ClientSecret), msftsim.ResourceGraph))
	if got := roleList(m); !slices.Equal(got, []string{"AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"}) {
		t.Fatalf("roles after consent: %v", got)
	}

	// A declined consent comes back as an error on the callback.
	other, _ := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Declines"})
	_ = e.admin.DenyAdminConsent(other.ID, true)
	q = consent(other.ID).Query()
	if q.Get("error") != "access_denied" || q.Get("admin_consent") != "False" || q.Get("state") != "s-123" {
		t.Fatalf("declined callback %v", q)
	}
	// A tenant without Log Analytics cannot grant Data.Read: AADSTS650052 on the callback.
	bare, _ := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "No LA", Licences: []string{"defender"}})
	q = consent(bare.ID).Query()
	if q.Get("error") != "invalid_client" || q.Get("error_description")[:13] != "AADSTS650052:" {
		t.Fatalf("unlicensed callback %v", q)
	}
}
