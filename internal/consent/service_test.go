package consent

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/tenant"
)

func TestBuildLinkPerCloud(t *testing.T) {
	s, err := NewService(Config{Authorities: map[string]string{"china": "https://sim.example:8443/"}}, nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	entra := uuid.MustParse("0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f")
	client := uuid.MustParse("11111111-2222-3333-4444-555555555555")
	for _, tc := range []struct {
		cloud         tenant.Cloud
		prefix, scope string
	}{
		{tenant.CloudGlobal, "https://login.microsoftonline.com/", "https://graph.microsoft.com/.default"},
		{tenant.CloudUSGovGCCHigh, "https://login.microsoftonline.us/", "https://graph.microsoft.us/.default"},
		{tenant.CloudUSGovDoD, "https://login.microsoftonline.us/", "https://dod-graph.microsoft.us/.default"},
		{tenant.CloudChina, "https://sim.example:8443/", "https://microsoftgraph.chinacloudapi.cn/.default"},
	} {
		link, err := s.buildLink(tenant.Tenant{EntraTenantID: entra, Cloud: tc.cloud}, client, "https://app.example/cb?x=1", "st-ate_")
		if err != nil {
			t.Fatal(err)
		}
		wantPrefix := tc.prefix + entra.String() + "/v2.0/adminconsent?"
		if !strings.HasPrefix(link, wantPrefix) {
			t.Errorf("%s: link %s, want prefix %s", tc.cloud, link, wantPrefix)
		}
		u, _ := url.Parse(link)
		q := u.Query()
		if q.Get("client_id") != client.String() || q.Get("scope") != tc.scope || q.Get("redirect_uri") != "https://app.example/cb?x=1" || q.Get("state") != "st-ate_" {
			t.Errorf("%s: query %v", tc.cloud, q)
		}
	}
	if _, err := s.buildLink(tenant.Tenant{EntraTenantID: entra, Cloud: "mars"}, client, "https://app.example/cb", "s"); err == nil {
		t.Error("a cloud without authority got a link")
	}
}

func TestNewServiceRefusesBadAuthority(t *testing.T) {
	for _, a := range []string{"http://login.example/", "login.example", "https://login.example/?x=1"} {
		if _, err := NewService(Config{Authorities: map[string]string{"global": a}}, nil, nil, nil, nil, nil); err == nil {
			t.Errorf("authority %q accepted", a)
		}
	}
}

func TestState(t *testing.T) {
	s, _ := NewService(Config{}, nil, nil, nil, nil, nil)
	a, err := s.newState()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.newState()
	if len(a) != StateLen || a == b || strings.ContainsAny(a, "+/=") {
		t.Fatalf("states %q %q", a, b)
	}
	if h := HashState(a); len(h) != 32 || string(h) == string(HashState(b)) {
		t.Fatal("hash")
	}
}

func TestDecide(t *testing.T) {
	entra := uuid.New()
	tn := tenant.Tenant{EntraTenantID: entra}
	for _, tc := range []struct {
		cb   Callback
		want Result
	}{
		{Callback{AdminConsent: "True", Tenant: entra.String()}, ResultConsented},
		{Callback{AdminConsent: "True", Tenant: strings.ToUpper(entra.String())}, ResultConsented},
		{Callback{AdminConsent: "True", Tenant: uuid.NewString()}, ResultTenantMismatch},
		{Callback{AdminConsent: "True"}, ResultTenantMismatch},
		{Callback{AdminConsent: "True", Tenant: "contoso.onmicrosoft.com"}, ResultTenantMismatch},
		{Callback{AdminConsent: "False", Tenant: entra.String()}, ResultDeclined},
		{Callback{AdminConsent: "True", Tenant: entra.String(), Error: "access_denied"}, ResultDeclined},
	} {
		if got := decide(tc.cb, tn); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.cb, got, tc.want)
		}
	}
}
