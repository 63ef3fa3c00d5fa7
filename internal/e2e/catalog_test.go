package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/app"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/server"
)

// consented creates a customer-managed integration of an app registered
// in the fixture's tenant, then consents the organization's provisioner
// there, so that checks read Entra (granted permissions, credentials).
func (f consentFixture) consented(t *testing.T, req msftsim.AppRequest, in *v1.Integration) (*v1.Integration, msftsim.AppCreds) {
	t.Helper()
	c := f.s.Clients()
	creds, err := f.sim.Admin().CreateApp(f.simTID, req)
	if err != nil {
		t.Fatal(err)
	}
	if in == nil {
		in = &v1.Integration{Kind: defenderKind}
	}
	in.Application = &v1.EntraApplication{ClientId: creds.ClientID}
	resp, err := c.Integrations.CreateIntegration(f.org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: f.tenant,
		Integration: in, ClientSecret: creds.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	back := f.follow(t, f.link(t, f.org.OperatorCtx, f.tenant).GetUrl())
	if _, err := c.Tenants.CompleteAdminConsent(f.org.OperatorCtx, completeReq(f.org.Name, back)); err != nil {
		t.Fatal(err)
	}
	return resp.GetIntegration(), creds
}

func (f consentFixture) check(t *testing.T, name string) *v1.Check {
	t.Helper()
	resp, err := f.s.Clients().Integrations.CheckIntegration(f.org.OperatorCtx, &v1.CheckIntegrationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCheck()
}

// TestCatalogNoFeaturesHealthyFromEntra (issue 10 item 9a): with the
// permissions read from Entra, an integration with no features enabled is
// judged on the base permissions only; it turned degraded, reporting the
// features' permissions as missing optional, while an empty feature list
// meant "all features".
func TestCatalogNoFeaturesHealthyFromEntra(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	in, _ := f.consented(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	c := f.check(t, in.GetName())
	p := c.GetPermissions()
	if p.GetSource() != "entra-app-role-assignments" {
		t.Fatalf("permissions from %q, want Entra's\n%s", p.GetSource(), describe(c))
	}
	if len(p.GetMissingOptional())+len(p.GetMissingRequired())+len(p.GetExtra()) != 0 {
		t.Fatalf("no features, everything of the base granted: %v\n%s", p, describe(c))
	}
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	if got := c.GetCatalogVersion(); got != catalog.Default().Version() {
		t.Fatalf("check recorded catalog version %q, want %q", got, catalog.Default().Version())
	}
}

// TestCatalogOverrideReJudges: an organization's override makes an
// optional permission required: the next check judges with it (degraded
// becomes broken) and records the new catalog version; GetPermissionCatalog
// shows the organization's effective catalog. Bad overrides are refused
// naming the field, with nothing written; a stale etag is Aborted; another
// organization sees NotFound.
func TestCatalogOverrideReJudges(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns")
	cat := f.s.Clients().Catalog
	base := catalog.Default().Version()
	roles := slices.DeleteFunc(slices.Clone(defenderRoles), func(r string) bool { return r == "SecurityIncident.Read.All" })
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles}, nil)

	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
	if !slices.Equal(c.GetPermissions().GetMissingOptional(), []string{"SecurityIncident.Read.All"}) || c.GetCatalogVersion() != base {
		t.Fatalf("before the override: %v, catalog %q\n%s", c.GetPermissions(), c.GetCatalogVersion(), describe(c))
	}

	name := f.org.Name + "/permissionCatalogOverride"
	got, err := cat.GetPermissionCatalogOverride(f.org.ViewerCtx, &v1.GetPermissionCatalogOverrideRequest{Name: name})
	if err != nil || got.GetPermissionCatalogOverride().GetEtag() != "0" || len(got.GetPermissionCatalogOverride().GetEntries()) != 0 {
		t.Fatalf("fresh override: %v, %v", got, err)
	}
	update := func(ctx context.Context, etag string, es ...*v1.PermissionRequirementOverride) (*v1.UpdatePermissionCatalogOverrideResponse, error) {
		return cat.UpdatePermissionCatalogOverride(ctx, &v1.UpdatePermissionCatalogOverrideRequest{
			PermissionCatalogOverride: &v1.PermissionCatalogOverride{Name: name, Etag: etag, Entries: es},
			UpdateMask:                &fieldmaskpb.FieldMask{Paths: []string{"entries"}}})
	}
	incidents := &v1.PermissionRequirementOverride{Kind: defenderKind, Value: "SecurityIncident.Read.All", Requirement: v1.Requirement_REQUIREMENT_REQUIRED}

	// Bad input: InvalidArgument naming the entry and field; nothing written.
	_, err = update(f.org.AdminCtx, "0", incidents,
		&v1.PermissionRequirementOverride{Kind: defenderKind, Value: "Nope.Read.All", Requirement: v1.Requirement_REQUIREMENT_REQUIRED},
		&v1.PermissionRequirementOverride{Kind: defenderKind, Value: "AuditLog.Read.All", Requirement: v1.Requirement_REQUIREMENT_ALTERNATIVE})
	wantCode(t, err, codes.InvalidArgument)
	wantViolation(t, err, "permission_catalog_override.entries[1].value")
	wantViolation(t, err, "permission_catalog_override.entries[2].requirement")
	_, err = cat.UpdatePermissionCatalogOverride(f.org.AdminCtx, &v1.UpdatePermissionCatalogOverrideRequest{
		PermissionCatalogOverride: &v1.PermissionCatalogOverride{Name: name, Entries: []*v1.PermissionRequirementOverride{incidents}},
		UpdateMask:                &fieldmaskpb.FieldMask{Paths: []string{"revision"}}})
	wantViolation(t, err, "update_mask")
	// Roles: an operator may not change the catalog; another organization
	// does not see this one's.
	_, err = update(f.org.OperatorCtx, "0", incidents)
	wantCode(t, err, codes.PermissionDenied)
	other := f.s.NewOrg(t, "Other")
	_, err = update(other.AdminCtx, "", incidents)
	wantCode(t, err, codes.NotFound)
	_, err = cat.GetPermissionCatalog(other.ViewerCtx, &v1.GetPermissionCatalogRequest{Organization: f.org.Name})
	wantCode(t, err, codes.NotFound)
	if got, _ := cat.GetPermissionCatalogOverride(f.org.ViewerCtx, &v1.GetPermissionCatalogOverrideRequest{Name: name}); got.GetPermissionCatalogOverride().GetRevision() != 0 {
		t.Fatalf("a refused update wrote: %v", got)
	}

	up, err := update(f.org.AdminCtx, "0", incidents)
	if err != nil {
		t.Fatal(err)
	}
	if o := up.GetPermissionCatalogOverride(); o.GetRevision() != 1 || o.GetEtag() != "1" || o.GetUpdateTime() == nil {
		t.Fatalf("written override %v", o)
	}
	_, err = update(f.org.AdminCtx, "0", incidents)
	wantCode(t, err, codes.Aborted)

	want := base + "+org.1"
	eff, err := cat.GetPermissionCatalog(f.org.ViewerCtx, &v1.GetPermissionCatalogRequest{Organization: f.org.Name, Kind: defenderKind})
	if err != nil {
		t.Fatal(err)
	}
	if eff.GetVersion() != want || eff.GetBaseVersion() != base || eff.GetOverrideRevision() != 1 {
		t.Fatalf("effective catalog %q (base %q, revision %d)", eff.GetVersion(), eff.GetBaseVersion(), eff.GetOverrideRevision())
	}
	for _, p := range eff.GetPermissions() {
		if p.GetValue() == "SecurityIncident.Read.All" && p.GetRequirement() != v1.Requirement_REQUIREMENT_REQUIRED {
			t.Fatalf("effective catalog entry %v", p)
		}
	}
	plain, err := cat.GetPermissionCatalog(f.org.ViewerCtx, &v1.GetPermissionCatalogRequest{Kind: defenderKind})
	if err != nil || plain.GetVersion() != base {
		t.Fatalf("catalog without organization: %q, %v", plain.GetVersion(), err)
	}

	c = f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	if !slices.Equal(c.GetPermissions().GetMissingRequired(), []string{"SecurityIncident.Read.All"}) || c.GetCatalogVersion() != want {
		t.Fatalf("after the override: %v, catalog %q\n%s", c.GetPermissions(), c.GetCatalogVersion(), describe(c))
	}
	// The history keeps each check's version.
	list, err := f.s.Clients().Integrations.ListChecks(f.org.ViewerCtx, &v1.ListChecksRequest{Parent: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, c := range list.GetChecks() {
		versions = append(versions, c.GetCatalogVersion())
	}
	if !slices.Equal(versions, []string{want, base}) {
		t.Fatalf("checks' catalog versions %v", versions)
	}
	// Cleared (an empty list): optional again, at a new revision.
	if _, err := update(f.org.AdminCtx, "1"); err != nil {
		t.Fatal(err)
	}
	c = f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_DEGRADED)
	if c.GetCatalogVersion() != base+"+org.2" {
		t.Fatalf("after clearing: catalog %q", c.GetCatalogVersion())
	}
	var n int
	if err := f.s.DB.QueryRow(context.Background(), `select count(*) from audit_events where resource = $1`, name).Scan(&n); err != nil || n != 2 {
		t.Fatalf("audit events for the override: %d, %v", n, err)
	}
}

// writeCatalog writes the default catalog with mod applied as a
// --catalog-file.
func writeCatalog(t *testing.T, version string, mod func(es []map[string]any) []map[string]any) string {
	t.Helper()
	var doc struct {
		Version string           `json:"version"`
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal(catalog.DefaultJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	doc.Version, doc.Entries = version, mod(doc.Entries)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCatalogFileReplacesDefault: --catalog-file replaces the embedded
// catalog at start: GetPermissionCatalog and the checks use it; a file
// with a bad entry stops the start, naming the entry.
func TestCatalogFileReplacesDefault(t *testing.T) {
	t.Parallel()
	file := writeCatalog(t, "dropzone-test.7", func(es []map[string]any) []map[string]any {
		for _, e := range es {
			if e["value"] == "SecurityIncident.Read.All" {
				e["requirement"] = "required"
				e["source"] = "https://docs.dropzone.ai/integrations/alert/ms_alert/ms365_alert"
			}
		}
		return es
	})
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", "1ns", "--catalog-file", file)
	resp, err := f.s.Clients().Catalog.GetPermissionCatalog(f.org.ViewerCtx, &v1.GetPermissionCatalogRequest{})
	if err != nil || resp.GetVersion() != "dropzone-test.7" {
		t.Fatalf("catalog %q, %v", resp.GetVersion(), err)
	}
	roles := slices.DeleteFunc(slices.Clone(defenderRoles), func(r string) bool { return r == "SecurityIncident.Read.All" })
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles}, nil)
	c := f.check(t, in.GetName())
	wantOutcome(t, c, v1.IntegrationState_INTEGRATION_STATE_BROKEN)
	if !slices.Equal(c.GetPermissions().GetMissingRequired(), []string{"SecurityIncident.Read.All"}) || c.GetCatalogVersion() != "dropzone-test.7" {
		t.Fatalf("check %v, catalog %q\n%s", c.GetPermissions(), c.GetCatalogVersion(), describe(c))
	}

	bad := writeCatalog(t, "bad.1", func(es []map[string]any) []map[string]any {
		es[1]["id"] = "not-a-guid"
		return append(es, es[0])
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs strings.Builder
	err = app.Serve(ctx, append(slices.Clone(f.s.Args), "--catalog-file", bad), &logs, func(server.Addrs) {
		t.Error("the server started with an invalid catalog file")
		cancel()
	})
	if err == nil || !strings.Contains(err.Error(), `entries[1] (microsoft-365-defender SecurityAlert.Read.All): id: "not-a-guid" is not a GUID`) ||
		!strings.Contains(err.Error(), "duplicate of entries[0]") {
		t.Fatalf("start with a bad catalog file: %v", err)
	}
}

// TestCheckExpiryFromEntra (issue 10 item 7): with the provisioner
// consented, the expiry step judges the secret's endDateTime in Entra
// (matched by keyId), not the date given at creation; the mismatch is
// reported once: the record is corrected and
// integration.credential_expiry_mismatch goes out, and the next check
// finds them equal.
func TestCheckExpiryFromEntra(t *testing.T) {
	t.Parallel()
	f := newConsentFixture(t)
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(f.org.AdminCtx, &v1.CreateWebhookRequest{
		Parent: f.org.Name, Webhook: &v1.Webhook{Url: "http://127.0.0.1:9/hook", Events: []v1.WebhookEvent{
			v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRY_MISMATCH}}}); err != nil {
		t.Fatal(err)
	}
	typed := time.Now().Add(700 * 24 * time.Hour).UTC().Truncate(time.Second)
	in, creds := f.consented(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles, SecretLifetime: "P60D"},
		&v1.Integration{Kind: defenderKind, Credential: &v1.Credential{ExpireTime: timestamppb.New(typed)}})
	key := creds.SecretKeyID
	if key == "" || creds.SecretExpires.IsZero() {
		t.Fatalf("msftsim gave no key ID or end date: %+v", creds)
	}
	// The customer says which secret it is (its key ID, as Entra shows it).
	if _, err := f.s.Clients().Integrations.UpdateIntegration(f.org.OperatorCtx, &v1.UpdateIntegrationRequest{
		Integration: &v1.Integration{Name: in.GetName(), Credential: &v1.Credential{KeyId: key}},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"credential.key_id"}}}); err != nil {
		t.Fatal(err)
	}
	entra := creds.SecretExpires.UTC()

	c := f.check(t, in.GetName())
	st := step(t, c, "expiry")
	if !strings.Contains(st.GetMessage(), "Entra's end date "+entra.Format(time.RFC3339)) ||
		!strings.Contains(st.GetMessage(), "differs from the recorded one ("+typed.Format(time.RFC3339)+")") {
		t.Fatalf("expiry step %v\n%s", st, describe(c))
	}
	// 60 days left in Entra: outside the 30-day window, so passed.
	if st.GetStatus() != passed || !(strings.HasPrefix(st.GetMessage(), "expires in 59 days") || strings.HasPrefix(st.GetMessage(), "expires in 60 days")) {
		t.Fatalf("expiry judged by the typed date: %v", st)
	}
	got, err := f.s.Clients().Integrations.GetIntegration(f.org.ViewerCtx, &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if e := got.GetIntegration().GetCredential().GetExpireTime().AsTime(); e.Sub(entra).Abs() >= time.Second {
		t.Fatalf("recorded expiry %v, want Entra's %v", e, entra)
	}
	c = f.check(t, in.GetName())
	if st := step(t, c, "expiry"); strings.Contains(st.GetMessage(), "differs") || !strings.Contains(st.GetMessage(), "confirmed in Entra") {
		t.Fatalf("second check: %v", st)
	}
	var n int
	if err := f.s.DB.QueryRow(context.Background(), `select count(*) from webhook_deliveries where organization_id = $1 and event = $2`,
		strings.TrimPrefix(f.org.Name, "organizations/"), "integration.credential_expiry_mismatch").Scan(&n); err != nil || n != 1 {
		t.Fatalf("credential_expiry_mismatch deliveries: %d, %v (want exactly one)", n, err)
	}
}
