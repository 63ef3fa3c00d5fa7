package microsoft_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

const graphAppID = "00000003-0000-0000-c000-000000000000"

// directory consents the organization's provisioner in the env's tenant,
// with the Graph permissions provisioning needs and User Access
// Administrator on the Sentinel resource group, and opens its Directory.
func (e *env) directory() (*microsoft.Directory, microsoft.Credentials) {
	e.t.Helper()
	home, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Dropzone"})
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.admin.RegisterProvisioner(home.ID, msftsim.AppRequest{DisplayName: "Dropzone Provisioner"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.admin.Consent(e.tenant, p.ClientID, []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
		"RoleManagement.ReadWrite.Directory", "Policy.Read.All"}, msftsim.AzureRole{Scope: rgScope(), Role: "User Access Administrator"}); err != nil {
		e.t.Fatal(err)
	}
	cr := microsoft.Credentials{Cloud: microsoft.CloudGlobal, TenantID: e.tenant, ClientID: p.ClientID, Secret: p.ClientSecret}
	d, err := e.client.NewDirectory(cr)
	if err != nil {
		e.t.Fatal(err)
	}
	return d, cr
}

func routeFault(route string, r faults.Rule) faults.Config {
	return faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{route: r}}}
}

// The provisioning writes, each done twice, leave one object each.
func TestDirectoryWritesAreIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()

	app, created, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-contoso", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil || !created || app.AppID == "" {
		t.Fatalf("upsert: %+v %v %v", app, created, err)
	}
	again, created, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-contoso", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil || created || again.ObjectID != app.ObjectID {
		t.Fatalf("second upsert: %+v created=%v %v (first %s)", again, created, err, app.ObjectID)
	}
	if n := e.admin.Count("graph.applications.create").Requests; n != 0 {
		t.Fatalf("POST /applications used %d times", n)
	}

	sp, err := d.CreateServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	sp2, err := d.CreateServicePrincipal(ctx, app.AppID)
	if err != nil || sp2.ObjectID != sp.ObjectID {
		t.Fatalf("second create: %+v %v (first %s)", sp2, err, sp.ObjectID)
	}

	graph, err := d.GetServicePrincipalByAppID(ctx, graphAppID)
	if err != nil {
		t.Fatal(err)
	}
	roleID := ""
	for _, r := range graph.AppRoles {
		if r.Value == "User.Read.All" {
			roleID = r.ID
		}
	}
	a1, err := d.AssignAppRole(ctx, graph.ObjectID, sp.ObjectID, roleID)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := d.AssignAppRole(ctx, graph.ObjectID, sp.ObjectID, roleID)
	if err != nil || a2.ID != a1.ID {
		t.Fatalf("second assignment: %+v %v (first %s)", a2, err, a1.ID)
	}
	if as, err := d.ListAppRoleAssignments(ctx, sp.ObjectID); err != nil || len(as) != 1 {
		t.Fatalf("assignments %v %v, want 1", as, err)
	}

	const securityReader = "5d6b6bb7-de71-4623-b4af-96380a352509"
	r1, err := d.AssignDirectoryRole(ctx, sp.ObjectID, securityReader, "")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := d.AssignDirectoryRole(ctx, sp.ObjectID, securityReader, "")
	if err != nil || r2.ID != r1.ID {
		t.Fatalf("second directory role: %+v %v", r2, err)
	}
	if err := d.RemoveDirectoryRoleAssignment(ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	if rs, err := d.ListDirectoryRoleAssignments(ctx, sp.ObjectID); err != nil || len(rs) != 0 {
		t.Fatalf("after remove: %v %v", rs, err)
	}
	if err := d.RemoveAppRoleAssignment(ctx, graph.ObjectID, a1.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveAppRoleAssignment(ctx, graph.ObjectID, a1.ID); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if err := d.DeleteApplication(ctx, app.ObjectID); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteApplication(ctx, app.ObjectID); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	_, err = d.GetApplication(ctx, app.ObjectID)
	_ = wantErr(t, err, mserr.ClassNotFound, "Request_ResourceNotFound")
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("%d early retries", n)
	}
}

// addPassword's answer is lost (the secret was added): the adapter re-reads,
// removes the orphan and adds again, leaving exactly one secret, which works.
func TestAddPasswordAfterLostAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()
	app, _, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-lost", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateServicePrincipal(ctx, app.AppID); err != nil {
		t.Fatal(err)
	}
	e.admin.SetFaults(routeFault("graph.applications.addPassword",
		faults.Rule{LostResponses: &faults.LostResponses{Injection: faults.Injection{Every: 1, Count: 1}}}))
	np, err := d.AddPassword(ctx, app.ObjectID, "dzconnect op-1", t0.Add(90*24*time.Hour))
	if err != nil || np.Secret == "" || np.KeyID == "" {
		t.Fatalf("AddPassword: %v", err)
	}
	pws, err := d.ListPasswords(ctx, app.ObjectID)
	if err != nil || len(pws) != 1 || pws[0].KeyID != np.KeyID {
		t.Fatalf("passwords %+v %v, want exactly the new one", pws, err)
	}
	if n := e.admin.Count("graph.applications.addPassword").Requests; n != 2 {
		t.Fatalf("addPassword sent %d times, want 2 (lost, then again after the re-read)", n)
	}
	if n := e.admin.Count("graph.applications.removePassword").Requests; n != 1 {
		t.Fatalf("removePassword sent %d times, want 1 (the orphan)", n)
	}
	cr := microsoft.Credentials{Cloud: microsoft.CloudGlobal, TenantID: e.tenant, ClientID: app.AppID, Secret: np.Secret}
	if _, err := e.session(cr).Token(ctx, microsoft.APIGraph); err != nil {
		t.Fatalf("the new secret: %v", err)
	}

	// A 504 the adapter sees is also never resent blindly: without the
	// re-read there would now be three secrets.
	e.admin.SetFaults(routeFault("graph.applications.addPassword",
		faults.Rule{ServerErrors: &faults.ServerErrors{Every: 1, Count: 1, Status: 504}}))
	np2, err := d.AddPassword(ctx, app.ObjectID, "dzconnect op-2", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RemovePassword(ctx, app.ObjectID, np.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemovePassword(ctx, app.ObjectID, np.KeyID); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if pws, _ := d.ListPasswords(ctx, app.ObjectID); len(pws) != 1 || pws[0].KeyID != np2.KeyID {
		t.Fatalf("passwords %+v, want only %s", pws, np2.KeyID)
	}
	if strings.Contains(np2.Hint, np2.Secret) || np2.Secret == "" {
		t.Fatal("secret missing or in the hint")
	}
}

// A 429 with Retry-After on a non-idempotent write is waited out and sent
// again (a throttled request was not processed); never early.
func TestThrottledWriteWaitsRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()
	app, _, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-429", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	e.admin.SetFaults(routeFault("graph.applications.addPassword",
		faults.Rule{Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 1}}))
	start := time.Now()
	if _, err := d.AddPassword(ctx, app.ObjectID, "dzconnect op-429", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("came back after %v, inside Retry-After", took)
	}
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("%d early retries", n)
	}
	if n := e.admin.Count("graph.applications.addPassword").Requests; n != 2 {
		t.Fatalf("addPassword sent %d times, want 2", n)
	}
	if pws, _ := d.ListPasswords(ctx, app.ObjectID); len(pws) != 1 {
		t.Fatalf("%d passwords, want 1", len(pws))
	}
}

// A service principal for an app that has not replicated yet is reported
// as replication lag, and works once it has.
func TestReplicationLagSurfaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()
	e.admin.SetFaults(routeFault("graph.applications.*", faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}))
	app, _, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-lag", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.CreateServicePrincipal(ctx, app.AppID)
	me := wantErr(t, err, mserr.ClassNotReplicated, "Request_BadRequest")
	if !mserr.IsReplicationLag(me) {
		t.Fatalf("not lag: %v", me)
	}
	if _, err := d.CreateServicePrincipal(ctx, app.AppID); err != nil {
		t.Fatalf("after replication: %v", err)
	}
}

// The Sentinel role through armauthorization/v2: the same deterministic
// name twice is one assignment; one made by hand under another name is
// found (RoleAssignmentExists).
func TestARMRoleAssignmentIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()
	c := e.app(nil)
	def, err := d.RoleDefinitionByName(ctx, rgScope(), "Microsoft Sentinel Reader")
	if err != nil || !strings.HasSuffix(def.ID, "/8d289c81-5878-46d4-8554-54e1e3d8b5cb") {
		t.Fatalf("role definition %+v %v", def, err)
	}
	a1, err := d.CreateRoleAssignment(ctx, rgScope(), c.SPObjectID, def.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Name != microsoft.RoleAssignmentName(rgScope(), c.SPObjectID, def.ID) || a1.PrincipalType != "ServicePrincipal" {
		t.Fatalf("assignment %+v", a1)
	}
	a2, err := d.CreateRoleAssignment(ctx, rgScope(), c.SPObjectID, def.Name) // by GUID: the same name
	if err != nil || a2.Name != a1.Name {
		t.Fatalf("second create: %+v %v", a2, err)
	}
	as, err := d.ListRoleAssignments(ctx, rgScope(), c.SPObjectID)
	if err != nil || len(as) != 1 {
		t.Fatalf("assignments %+v %v, want 1", as, err)
	}
	if got, err := d.GetRoleAssignment(ctx, rgScope(), a1.Name); err != nil || got.PrincipalID != c.SPObjectID {
		t.Fatalf("get %+v %v", got, err)
	}
	// Made by hand under another name: 409 RoleAssignmentExists, taken as success.
	other := e.app(nil)
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: rgScope(), Role: "Log Analytics Reader"}, other.SPObjectID); err != nil {
		t.Fatal(err)
	}
	lar, err := d.RoleDefinitionByName(ctx, rgScope(), "Log Analytics Reader")
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.CreateRoleAssignment(ctx, rgScope(), other.SPObjectID, lar.ID)
	if err != nil || got.Name == microsoft.RoleAssignmentName(rgScope(), other.SPObjectID, lar.ID) {
		t.Fatalf("existing assignment under another name: %+v %v", got, err)
	}
	if err := d.DeleteRoleAssignment(ctx, rgScope(), a1.Name); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteRoleAssignment(ctx, rgScope(), a1.Name); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if as, _ := d.ListRoleAssignments(ctx, rgScope(), c.SPObjectID); len(as) != 0 {
		t.Fatalf("after delete: %+v", as)
	}
	if n := e.admin.Count("arm.roleAssignments.put").Requests; n != 3 {
		t.Fatalf("%d PUTs, want 3", n)
	}
}

func TestRoleAssignmentNameDeterministic(t *testing.T) {
	t.Parallel()
	a := microsoft.RoleAssignmentName("/subscriptions/S/resourceGroups/RG", "P", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/R")
	b := microsoft.RoleAssignmentName("/subscriptions/s/resourceGroups/rg/", "p", "r")
	c := microsoft.RoleAssignmentName("/subscriptions/s/resourceGroups/rg", "p", "other")
	if a != b || a == c || len(a) != 36 {
		t.Fatalf("names %s %s %s", a, b, c)
	}
}

// The tenant's app-management policy, and certificate credentials: added
// beside existing ones, usable for a token (client assertion), removed.
func TestPolicyAndCertificates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()
	if err := e.admin.SetPolicy(e.tenant, msftsim.PolicySpec{PasswordMaxLifetime: "P90D", BlockPasswordAddition: true}); err != nil {
		t.Fatal(err)
	}
	pol, err := d.GetAppManagementPolicy(ctx)
	if err != nil || !pol.Enabled || !pol.PasswordAdditionBlocked || pol.PasswordMaxLifetime == "" {
		t.Fatalf("policy %+v %v", pol, err)
	}
	app, _, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-cert", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateServicePrincipal(ctx, app.AppID); err != nil {
		t.Fatal(err)
	}
	_, err = d.AddPassword(ctx, app.ObjectID, "blocked", time.Time{})
	_ = wantErr(t, err, mserr.ClassPolicyBlocked, "")

	c1, k1 := selfSigned(t, "one")
	c2, k2 := selfSigned(t, "two")
	if err := d.UpdateKeyCredentials(ctx, app.ObjectID, []microsoft.KeyCredential{{DisplayName: "one", Key: c1.Raw}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateKeyCredentials(ctx, app.ObjectID, []microsoft.KeyCredential{{DisplayName: "two", Key: c2.Raw}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetApplication(ctx, app.ObjectID)
	if err != nil || len(got.Keys) != 2 {
		t.Fatalf("keys %+v %v, want 2", got.Keys, err)
	}
	for _, kc := range []struct {
		cert *x509.Certificate
		key  *rsa.PrivateKey
	}{{c1, k1}, {c2, k2}} {
		cr := microsoft.Credentials{Cloud: microsoft.CloudGlobal, TenantID: e.tenant, ClientID: app.AppID,
			Certificate: &microsoft.Certificate{Chain: []*x509.Certificate{kc.cert}, Key: kc.key}}
		if strings.Contains(cr.String(), "PRIVATE") {
			t.Fatal("credentials print their key")
		}
		if _, err := e.session(cr).Token(ctx, microsoft.APIGraph); err != nil {
			t.Fatalf("certificate %s: %v", kc.cert.Subject.CommonName, err)
		}
	}
	first := got.Keys[0].KeyID
	if err := d.UpdateKeyCredentials(ctx, app.ObjectID, nil, []string{first}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.GetApplication(ctx, app.ObjectID); len(got.Keys) != 1 || got.Keys[0].KeyID == first {
		t.Fatalf("after removing %s: %+v", first, got.Keys)
	}
}

func selfSigned(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}
