package consent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

func TestForgetsConsents(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	for _, tc := range []struct {
		name   string
		cur    uuid.UUID
		next   uuid.UUID
		forget bool
	}{
		{"first provisioner", uuid.Nil, a, false},
		{"same application, new secret", a, a, false},
		{"another application", a, b, true},
	} {
		if got := forgetsConsents(organization.Organization{ProvisionerClientID: tc.cur}, tc.next); got != tc.forget {
			t.Errorf("%s: forgets = %v, want %v", tc.name, got, tc.forget)
		}
	}
}

func TestUsable(t *testing.T) {
	now := time.Now()
	used := now.Add(-time.Minute)
	for _, tc := range []struct {
		name string
		r    Request
		ok   bool
	}{
		{"fresh", Request{ExpireTime: now.Add(time.Hour)}, true},
		{"expired", Request{ExpireTime: now}, false},
		{"used (single use)", Request{ExpireTime: now.Add(time.Hour), UsedTime: &used, Result: ResultDeclined}, false},
	} {
		err := usable(tc.r, now)
		if (err == nil) != tc.ok || (err != nil && !apperr.Is(err, apperr.InvalidArgument)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// admin_consent is compared case-insensitively: Microsoft sends "True";
// anything but true, or an error, is a refusal.
func TestDecideAdminConsentCaseInsensitive(t *testing.T) {
	tid := uuid.New()
	tn := tenant.Tenant{EntraTenantID: tid}
	for _, tc := range []struct {
		cb   Callback
		want Result
	}{
		{Callback{AdminConsent: "True", Tenant: tid.String()}, ResultConsented},
		{Callback{AdminConsent: "true", Tenant: tid.String()}, ResultConsented},
		{Callback{AdminConsent: "TRUE", Tenant: strings.ToUpper(tid.String())}, ResultConsented},
		{Callback{AdminConsent: "False", Tenant: tid.String()}, ResultDeclined},
		{Callback{AdminConsent: "yes", Tenant: tid.String()}, ResultDeclined},
		{Callback{AdminConsent: "True", Tenant: tid.String(), Error: "access_denied"}, ResultDeclined},
		{Callback{AdminConsent: "True", Tenant: uuid.NewString()}, ResultTenantMismatch},
		{Callback{AdminConsent: "True"}, ResultTenantMismatch},
	} {
		if got := decide(tc.cb, tn); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.cb, got, tc.want)
		}
	}
}

func TestSameRedirect(t *testing.T) {
	const issued = "https://mssp.example.com/consent/callback"
	for _, tc := range []struct {
		issued, got string
		same        bool
	}{
		{issued, issued, true},
		{issued, issued + "?admin_consent=True&tenant=x&state=y&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default", true},
		{issued, "HTTPS://MSSP.example.COM/consent/callback", true},
		{issued, "https://mssp.example.com/consent/other", false},
		{issued, "https://evil.example.com/consent/callback", false},
		{issued, "http://mssp.example.com/consent/callback", false},
		{issued, "https://mssp.example.com:8443/consent/callback", false},
		{issued, "", false},
		{issued, "https://mssp.example.com/consent/callback?extra=1", false},
		{issued + "?org=a", issued + "?org=a&state=s&admin_consent=True", true},
		{issued + "?org=a", issued + "?org=b", false},
		{issued, "::not a url", false},
	} {
		if got := sameRedirect(tc.issued, tc.got); got != tc.same {
			t.Errorf("sameRedirect(%q, %q) = %v, want %v", tc.issued, tc.got, got, tc.same)
		}
	}
}

func TestMissingProvisionerPermissions(t *testing.T) {
	g := func(vals ...string) []Grant {
		var out []Grant
		for _, v := range vals {
			out = append(out, Grant{ResourceAppID: GraphAppID, Value: v})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		grants  []Grant
		missing []string
	}{
		{"least privilege", g("Application.ReadWrite.OwnedBy", "Application.Read.All", "AppRoleAssignment.ReadWrite.All", "Policy.Read.All"), nil},
		{"ReadWrite.All covers both application permissions", g("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Policy.Read.All"), nil},
		{"no read", g("Application.ReadWrite.OwnedBy", "AppRoleAssignment.ReadWrite.All", "Policy.Read.All"), []string{"Application.Read.All"}},
		{"nothing", nil, []string{"Application.ReadWrite.OwnedBy", "Application.Read.All", "AppRoleAssignment.ReadWrite.All", "Policy.Read.All"}},
		{"another resource's role of the same name does not count",
			[]Grant{{ResourceAppID: "fc780465-2017-40d4-a0c5-307022471b92", Value: "Policy.Read.All"}},
			[]string{"Application.ReadWrite.OwnedBy", "Application.Read.All", "AppRoleAssignment.ReadWrite.All", "Policy.Read.All"}},
	} {
		_, missing := missingPermissions(tc.grants)
		if !slices.Equal(missing, tc.missing) {
			t.Errorf("%s: missing %v, want %v", tc.name, missing, tc.missing)
		}
		if r := remedyMissing(missing); (r == "") != (len(missing) == 0) || len(missing) > 0 && !strings.Contains(r, missing[0]) {
			t.Errorf("%s: remedy %q", tc.name, r)
		}
	}
}
