package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/oidctest"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

const oidcAudience = "dzconnect-e2e"

func bearerCtx(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestOIDC: a workload calls the API with its issuer's JWT, beside API
// keys: the organization and role come from its claims (or, in
// --auth-config-file, from its subject); the audit names it
// oidc:<issuer>#<sub>; expired, wrong-audience, wrong-issuer, unsigned and
// wrong-key tokens are one Unauthenticated; the role and organization
// rules are those of API keys; the issuer's key rotation is followed; no
// token reaches the log.
func TestOIDC(t *testing.T) {
	t.Parallel()
	is := oidctest.Start(t)
	platform := oidctest.Start(t) // a second issuer, from the config file
	cfgFile := filepath.Join(t.TempDir(), "auth.json")
	cfg, err := json.Marshal(map[string]any{"issuers": []map[string]any{{
		"issuer": platform.URL, "audience": oidcAudience, "ca_file": platform.CAFile, "disable_claims": true,
		"subjects": []map[string]any{{"subject": "platform-operator", "service_admin": true}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--oidc-issuer", is.URL, "--oidc-audience", oidcAudience,
		"--oidc-ca-file", is.CAFile, "--auth-config-file", cfgFile}})
	c := s.Clients()

	// The platform's service-admin subject creates an organization.
	adminTok := platform.Token(t, platform.Claims("platform-operator", oidcAudience, 5*time.Minute, nil))
	o, err := c.Orgs.CreateOrganization(bearerCtx(t, adminTok), &v1.CreateOrganizationRequest{Organization: &v1.Organization{DisplayName: "OIDC"}})
	if err != nil {
		t.Fatalf("service-admin subject: %v", err)
	}
	orgName := o.GetOrganization().GetName()
	other := s.NewOrg(t, "Other")
	orgID := strings.TrimPrefix(orgName, "organizations/")
	token := func(sub, role string, ttl time.Duration) string {
		return is.Token(t, is.Claims(sub, oidcAudience, ttl, map[string]any{"dzconnect_org": orgID, "dzconnect_role": role}))
	}
	tenantReq := func(parent string) *v1.CreateTenantRequest {
		return &v1.CreateTenantRequest{Parent: parent, Tenant: &v1.Tenant{EntraTenantId: "11111111-2222-3333-4444-555555555555",
			Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "via OIDC"}}
	}

	// Roles and organizations as with API keys.
	opTok, viewTok, adminOrgTok := token("svc-deployer", "operator", 5*time.Minute), token("svc-reader", "viewer", 5*time.Minute), token("svc-admin", "admin", 5*time.Minute)
	wantCode(t, errOf(c.Tenants.CreateTenant(bearerCtx(t, viewTok), tenantReq(orgName))), codes.PermissionDenied)
	tr, err := c.Tenants.CreateTenant(bearerCtx(t, opTok), tenantReq(orgName))
	if err != nil {
		t.Fatalf("operator token: %v", err)
	}
	tn := tr.GetTenant()
	if _, err := c.Tenants.GetTenant(bearerCtx(t, viewTok), &v1.GetTenantRequest{Name: tn.GetName()}); err != nil {
		t.Fatalf("viewer token: %v", err)
	}
	wantCode(t, errOf(c.Tenants.ListTenants(bearerCtx(t, opTok), &v1.ListTenantsRequest{Parent: other.Name})), codes.NotFound)
	wantCode(t, errOf(c.Orgs.CreateOrganization(bearerCtx(t, adminOrgTok), &v1.CreateOrganizationRequest{Organization: &v1.Organization{DisplayName: "x"}})), codes.PermissionDenied)

	// The audit names the workload.
	ev, err := c.Audit.ListAuditEvents(bearerCtx(t, adminOrgTok), &v1.ListAuditEventsRequest{Parent: orgName, Resource: tn.GetName()})
	if err != nil || len(ev.GetAuditEvents()) != 1 || ev.GetAuditEvents()[0].GetActor() != "oidc:"+is.URL+"#svc-deployer" {
		t.Fatalf("audit of the OIDC create: %v %v", ev, err)
	}

	// REST takes the same token.
	rs := rest{t, s.HTTPURL, viewTok}
	if code, body, _ := rs.do("GET", "/v1/"+tn.GetName(), nil); code != 200 || body["tenant"].(map[string]any)["name"] != tn.GetName() {
		t.Fatalf("REST with a token: %d %v", code, body)
	}

	// Refusals: one Unauthenticated, no detail.
	claims := func(mut func(map[string]any)) map[string]any {
		c := is.Claims("svc-deployer", oidcAudience, 5*time.Minute, map[string]any{"dzconnect_org": orgID, "dzconnect_role": "operator"})
		mut(c)
		return c
	}
	stranger := oidctest.NewKey(t, is.Current().ID)
	bad := map[string]string{
		"expired":        token("svc-deployer", "operator", -time.Minute),
		"wrong audience": is.Token(t, claims(func(c map[string]any) { c["aud"] = "another-service" })),
		"wrong issuer":   platform.Token(t, claims(func(c map[string]any) { c["iss"] = platform.URL })),
		"unsigned":       oidctest.Unsigned(t, claims(func(map[string]any) {})),
		"wrong key":      oidctest.Sign(t, stranger, claims(func(map[string]any) {})),
		"HS256":          oidctest.HMAC(t, is.Current().ID, oidctest.PublicPEM(is.Current()), claims(func(map[string]any) {})),
	}
	for name, tok := range bad {
		st := wantCode(t, errOf(c.Tenants.ListTenants(bearerCtx(t, tok), &v1.ListTenantsRequest{Parent: orgName})), codes.Unauthenticated)
		if st.Message() != "invalid, expired or unrecognized bearer token" {
			t.Errorf("%s: message %q", name, st.Message())
		}
		if code, _, _ := (rest{t, s.HTTPURL, tok}).do("GET", "/v1/"+orgName+"/tenants", nil); code != 401 {
			t.Errorf("%s over REST: %d, want 401", name, code)
		}
	}

	// The issuer rotates its key: tokens of the new key verify, those of
	// the withdrawn key do not.
	oldKey := is.Current()
	is.Rotate(t, false)
	if _, err := c.Tenants.ListTenants(bearerCtx(t, token("svc-reader", "viewer", 5*time.Minute)), &v1.ListTenantsRequest{Parent: orgName}); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	wantCode(t, errOf(c.Tenants.ListTenants(bearerCtx(t, oidctest.Sign(t, oldKey, claims(func(map[string]any) {}))),
		&v1.ListTenantsRequest{Parent: orgName})), codes.Unauthenticated)

	// API keys keep working beside tokens.
	if _, err := c.Tenants.ListTenants(other.ViewerCtx, &v1.ListTenantsRequest{Parent: other.Name}); err != nil {
		t.Fatalf("API key beside OIDC: %v", err)
	}

	logs := s.Logs.String()
	for _, tok := range append([]string{opTok, viewTok, adminTok, adminOrgTok}, bad["expired"], bad["wrong key"]) {
		if strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
			t.Fatal("a token reached the log")
		}
	}
	if !strings.Contains(logs, `"actor":"oidc:`+is.URL+`#svc-deployer"`) {
		t.Error("the call log does not name the OIDC actor")
	}
}
