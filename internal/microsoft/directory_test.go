package microsoft_test

import (
	"slices"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// TestAppRoleGrantsFromEntra reads what Entra granted to an integration's
// app with the organization's consented provisioner: the values of its app
// role assignments, resolved per resource.
func TestAppRoleGrantsFromEntra(t *testing.T) {
	e := newEnv(t)
	c := e.app([]string{"User.Read.All", "SecurityAlert.Read.All", "log_analytics/Data.Read"})
	home, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Dropzone"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.admin.RegisterProvisioner(home.ID, msftsim.AppRequest{DisplayName: "Dropzone Provisioner"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Consent(e.tenant, p.ClientID, []string{"Application.Read.All"}); err != nil {
		t.Fatal(err)
	}
	dir, err := e.client.NewDirectory(microsoft.Credentials{Cloud: "global", TenantID: e.tenant, ClientID: p.ClientID, Secret: p.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	grants, err := dir.AppRoleGrants(t.Context(), c.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range grants {
		got = append(got, g.ResourceAppID+"/"+g.Value)
	}
	slices.Sort(got)
	want := []string{
		"00000003-0000-0000-c000-000000000000/SecurityAlert.Read.All",
		"00000003-0000-0000-c000-000000000000/User.Read.All",
		"ca7f3f0b-7d91-482c-8e09-c5d840d0eac5/Data.Read",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("grants %v, want %v", got, want)
	}

	// A provisioner without directory read permission is told so.
	if _, err := e.admin.Consent(e.tenant, p.ClientID, nil); err != nil {
		t.Fatal(err)
	}
	weak := e.app(nil)
	wd, err := e.client.NewDirectory(microsoft.Credentials{Cloud: "global", TenantID: e.tenant, ClientID: weak.ClientID, Secret: weak.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wd.AppRoleGrants(t.Context(), c.ClientID)
	_ = wantErr(t, err, mserr.ClassPermissionMissing, "")
}
