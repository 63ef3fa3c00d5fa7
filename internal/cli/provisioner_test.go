package cli_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/cli"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

const provisionerSecret = "prov~Secret.Value_do_not_print_0123456789"

func TestOrgSetProvisioner(t *testing.T) {
	h := newHarness(t)
	h.ok("", "org", "create", "--display-name", "Contoso")
	clientID := "11111111-2222-3333-4444-555555555555"

	// From standard input.
	r := h.ok(provisionerSecret+"\n", "org", "set-provisioner", "org-1", "--client-id", clientID, "--client-secret-file", "-")
	diffProto(t, "request", &dzconnectv1.SetOrganizationProvisionerRequest{
		Name: "organizations/org-1", ClientId: clientID, ClientSecret: provisionerSecret,
	}, lastRequest[*dzconnectv1.SetOrganizationProvisionerRequest](t, h, "SetOrganizationProvisioner"))
	if !strings.Contains(r.stdout, "Provisioner client ID:") || !strings.Contains(r.stdout, clientID) {
		t.Errorf("output lacks the provisioner:\n%s", r.stdout)
	}
	// From a file.
	path := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(path, []byte(provisionerSecret+"2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok("", "org", "set-provisioner", "organizations/org-1", "--client-id", clientID, "--client-secret-file", path)
	if got := lastRequest[*dzconnectv1.SetOrganizationProvisionerRequest](t, h, "SetOrganizationProvisioner").GetClientSecret(); got != provisionerSecret+"2" {
		t.Error("the secret file was not sent")
	}
	for _, r := range []result{h.run("", "org", "set-provisioner", "org-1", "--client-id", clientID, "--client-secret-file", path), h.run(provisionerSecret, "org", "get", "org-1")} {
		if strings.Contains(r.stdout+r.stderr, provisionerSecret) {
			t.Errorf("a secret was printed:\n%s%s", r.stdout, r.stderr)
		}
	}

	// Usage errors: nothing is called.
	before := len(h.srv.callsOf("SetOrganizationProvisioner"))
	for _, args := range [][]string{
		{"org", "set-provisioner", "org-1", "--client-id", clientID},
		{"org", "set-provisioner", "org-1", "--client-secret-file", "-"},
		{"org", "set-provisioner", "--client-id", clientID, "--client-secret-file", "-"},
		{"org", "set-provisioner", "org-1", "--client-id", clientID, "--client-secret", "x"},
	} {
		if r := h.run(provisionerSecret, args...); r.code != cli.ExitUsage {
			t.Errorf("dzctl %v: exit %d, want %d\n%s", args, r.code, cli.ExitUsage, r.stderr)
		}
	}
	if r := h.run("", "org", "set-provisioner", "org-1", "--client-id", clientID, "--client-secret-file", "-"); r.code == cli.ExitOK {
		t.Error("an empty secret was accepted")
	}
	if n := len(h.srv.callsOf("SetOrganizationProvisioner")); n != before {
		t.Errorf("%d calls after usage errors", n-before)
	}
}

func TestTenantConsent(t *testing.T) {
	h := newHarness(t)
	h.ok("", "tenant", "create", "--org", "contoso", "--entra-tenant-id", "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f", "--display-name", "Fabrikam")
	tenant := "organizations/contoso/tenants/t-1"

	r := h.ok("", "tenant", "consent-link", tenant, "--redirect-uri", "https://mssp.example.com/consent")
	diffProto(t, "link request", &dzconnectv1.GetAdminConsentLinkRequest{Name: tenant, RedirectUri: "https://mssp.example.com/consent"},
		lastRequest[*dzconnectv1.GetAdminConsentLinkRequest](t, h, "GetAdminConsentLink"))
	if !strings.Contains(r.stdout, "URL:") || !strings.Contains(r.stdout, "state="+fakeConsentState) || !strings.Contains(r.stdout, "2026-11-26T05:00:00Z") {
		t.Errorf("link output:\n%s", r.stdout)
	}
	if r := h.run("", "tenant", "consent-link", tenant); r.code != cli.ExitUsage {
		t.Errorf("consent-link without --redirect-uri: exit %d", r.code)
	}

	// The whole redirect URL, as pasted from the browser.
	q := url.Values{"admin_consent": {"True"}, "tenant": {"0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f"}, "state": {fakeConsentState}, "scope": {"https://graph.microsoft.com/.default"}}
	r = h.ok("", "tenant", "complete-consent", "--org", "contoso", "--redirect-url", "https://mssp.example.com/consent?"+q.Encode())
	diffProto(t, "complete request", &dzconnectv1.CompleteAdminConsentRequest{Parent: "organizations/contoso", State: fakeConsentState,
		AdminConsent: "True", Tenant: "0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f", Scope: "https://graph.microsoft.com/.default",
		RedirectUri: "https://mssp.example.com/consent?" + q.Encode()},
		lastRequest[*dzconnectv1.CompleteAdminConsentRequest](t, h, "CompleteAdminConsent"))
	if !strings.Contains(r.stdout, "Provisioner consent:") || !strings.Contains(r.stdout, "2026-11-26T04:00:00Z") {
		t.Errorf("complete output:\n%s", r.stdout)
	}

	// The parameters one by one, with Microsoft's error: exit 1 with the message.
	r = h.run("", "tenant", "complete-consent", "--org", "contoso", "--redirect-uri", "https://mssp.example.com/consent",
		"--state", fakeConsentState, "--admin-consent", "False",
		"--error", "access_denied", "--error-description", "AADSTS65004: User declined to consent to access the app.")
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "FailedPrecondition") || !strings.Contains(r.stderr, "access_denied") {
		t.Errorf("declined: exit %d\n%s", r.code, r.stderr)
	}
	diffProto(t, "declined request", &dzconnectv1.CompleteAdminConsentRequest{Parent: "organizations/contoso", State: fakeConsentState,
		AdminConsent: "False", Error: "access_denied", ErrorDescription: "AADSTS65004: User declined to consent to access the app.",
		RedirectUri: "https://mssp.example.com/consent"},
		lastRequest[*dzconnectv1.CompleteAdminConsentRequest](t, h, "CompleteAdminConsent"))

	// Usage errors: nothing is called.
	before := len(h.srv.callsOf("CompleteAdminConsent"))
	for _, args := range [][]string{
		{"tenant", "complete-consent", "--redirect-url", "https://mssp.example.com/consent?" + q.Encode()},
		{"tenant", "complete-consent", "--org", "contoso"},
		{"tenant", "complete-consent", "--org", "contoso", "--state", fakeConsentState, "--admin-consent", "True", "--tenant", "x"},
		{"tenant", "complete-consent", "--org", "contoso", "--redirect-url", "https://mssp.example.com/consent"},
		{"tenant", "complete-consent", "--org", "contoso", "--redirect-url", "https://mssp.example.com/consent?admin_consent=True"},
		{"tenant", "complete-consent", "--org", "contoso", "--redirect-url", "https://x/?state=s", "--state", "s"},
	} {
		if r := h.run("", args...); r.code != cli.ExitUsage {
			t.Errorf("dzctl %v: exit %d, want %d\n%s", args, r.code, cli.ExitUsage, r.stderr)
		}
	}
	if n := len(h.srv.callsOf("CompleteAdminConsent")); n != before {
		t.Errorf("%d calls after usage errors", n-before)
	}
}
