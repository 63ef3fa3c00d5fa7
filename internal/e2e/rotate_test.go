package e2e

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

// credRow is one credential row as the tests read it.
type credRow struct {
	id      uuid.UUID
	keyID   string
	state   string
	path    string
	version int
}

func (f provisionFixture) credentials(t *testing.T, name string) []credRow {
	t.Helper()
	n, err := resource.ParseIntegration("name", name)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.s.DB.Query(context.Background(), `select id, coalesce(key_id::text, ''), state, secret_path, secret_version
		from credentials where organization_id = $1 and integration_id = $2 order by create_time, id`, n.Org, n.Integration)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []credRow
	for rows.Next() {
		var r credRow
		var v int64
		if err := rows.Scan(&r.id, &r.keyID, &r.state, &r.path, &v); err != nil {
			t.Fatal(err)
		}
		r.version = int(v)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f provisionFixture) rotate(t *testing.T, name, requestID string) *v1.Operation {
	t.Helper()
	resp, err := f.prov.RotateCredential(f.operator(t), &v1.RotateCredentialRequest{Name: name, RequestId: requestID})
	if err != nil {
		t.Fatalf("RotateCredential: %v", err)
	}
	return resp.GetOperation()
}

// setOverlap sets the organization's rotation overlap (no API yet: the
// column, its default and its check constraint are the setting).
func (f provisionFixture) setOverlap(t *testing.T, d time.Duration) {
	t.Helper()
	org := strings.TrimPrefix(f.org.Name, "organizations/")
	if _, err := f.s.DB.Exec(context.Background(), `update organizations set credential_overlap_seconds = $2 where id = $1`,
		org, int64(d/time.Second)); err != nil {
		t.Fatal(err)
	}
}

func (f provisionFixture) app(t *testing.T, in *v1.Integration) msftsim.AppState {
	t.Helper()
	apps, err := f.sim.Admin().Applications(f.simTID, func(s msftsim.AppState) bool {
		return s.ObjectID == in.GetApplication().GetApplicationObjectId()
	})
	if err != nil || len(apps) != 1 {
		t.Fatalf("application: %d, %v", len(apps), err)
	}
	return apps[0]
}

// waitCredential polls the credential row until it reaches state.
func (f provisionFixture) waitCredential(t *testing.T, name string, id uuid.UUID, state string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, c := range f.credentials(t, name) {
			if c.id == id && c.state == state {
				return
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the row's state
	}
	t.Fatalf("credential %s not %s within a minute: %+v\nlogs:\n%s", id, state, f.credentials(t, name), f.s.Logs.String())
}

func byState(cs []credRow, state string) []credRow {
	var out []credRow
	for _, c := range cs {
		if c.state == state {
			out = append(out, c)
		}
	}
	return out
}

func TestRotateCredential(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	old := byState(f.credentials(t, name), "active")[0]
	oldSecret := f.vaultSecret(t, in)
	f.setOverlap(t, 6*time.Second)

	// Concurrent calls: one operation.
	var wg sync.WaitGroup
	ops := make([]*v1.Operation, 4)
	for i := range ops {
		wg.Add(1)
		go func() { defer wg.Done(); ops[i] = f.rotate(t, name, "") }()
	}
	wg.Wait()
	for _, op := range ops[1:] {
		if op.GetName() != ops[0].GetName() {
			t.Fatalf("concurrent rotations: %s and %s", ops[0].GetName(), op.GetName())
		}
	}
	if ops[0].GetKind() != provision.RotateKindName || ops[0].GetTarget() != name {
		t.Fatalf("operation %v", ops[0])
	}
	done := f.wait(t, ops[0].GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("rotate: %v\nlogs:\n%s", done, f.s.Logs.String())
	}

	// The new credential is active, the old one retiring, and both work:
	// Entra holds exactly the two, with the values Vault holds.
	cs := f.credentials(t, name)
	active, retiring := byState(cs, "active"), byState(cs, "retiring")
	if len(active) != 1 || len(retiring) != 1 || retiring[0].id != old.id || active[0].id == old.id {
		t.Fatalf("credentials after rotation: %+v", cs)
	}
	in = f.integration(t, done)
	newSecret := f.vaultSecret(t, in)
	if newSecret == oldSecret {
		t.Fatal("the active secret did not change")
	}
	app := f.app(t, in)
	if len(app.Passwords) != 2 {
		t.Fatalf("passwords during the overlap: %+v", app.Passwords)
	}
	a := f.sim.Admin()
	if !a.SecretMatches(f.simTID, app.ObjectID, active[0].keyID, newSecret) || !a.SecretMatches(f.simTID, app.ObjectID, old.keyID, oldSecret) {
		t.Fatal("Entra's secrets are not Vault's")
	}
	if _, ok := secretAt(t, f.s, old.path, old.version); !ok {
		t.Fatal("the old secret left Vault during the overlap")
	}
	// A check now uses the new credential and passes.
	chk, err := f.s.Clients().Integrations.CheckIntegration(f.operator(t), &v1.CheckIntegrationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if chk.GetCheck().GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY && chk.GetCheck().GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_PROPAGATING {
		t.Fatalf("check with the new credential: %v", chk.GetCheck())
	}

	// After the overlap: the old password is gone from Entra and Vault.
	f.waitCredential(t, name, old.id, "removed")
	waitJobs(t, f.s, "destroy_secret")
	if _, ok := secretAt(t, f.s, old.path, old.version); ok {
		t.Fatal("the old secret is still in Vault after the overlap")
	}
	app = f.app(t, in)
	if len(app.Passwords) != 1 || !strings.EqualFold(app.Passwords[0].KeyID, active[0].keyID) {
		t.Fatalf("passwords after the overlap: %+v", app.Passwords)
	}
	if !a.SecretMatches(f.simTID, app.ObjectID, active[0].keyID, f.vaultSecret(t, in)) {
		t.Fatal("the active secret is not the one Entra holds")
	}
}

func TestRotateCredentialVerificationFails(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	old := byState(f.credentials(t, name), "active")[0]
	// The application disabled: no token for the new secret.
	if err := f.sim.Admin().SetAppEnabled(f.simTID, in.GetApplication().GetClientId(), false); err != nil {
		t.Fatal(err)
	}
	done := f.wait(t, f.rotate(t, name, uuid.NewString()).GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_FAILED || done.GetError().GetStep() != provision.RotateStepVerify {
		t.Fatalf("rotate: %v", done)
	}
	if err := f.sim.Admin().SetAppEnabled(f.simTID, in.GetApplication().GetClientId(), true); err != nil {
		t.Fatal(err)
	}
	// The old credential stays active; the new one is removed from Entra
	// and Vault.
	newID := provision.CredentialID(uuid.MustParse(done.GetName()[strings.LastIndex(done.GetName(), "/")+1:]))
	f.waitCredential(t, name, newID, "removed")
	waitJobs(t, f.s, "destroy_secret")
	cs := f.credentials(t, name)
	if a := byState(cs, "active"); len(a) != 1 || a[0].id != old.id {
		t.Fatalf("credentials after a failed rotation: %+v", cs)
	}
	for _, c := range cs {
		if c.id == newID {
			if _, ok := secretAt(t, f.s, c.path, c.version); ok {
				t.Fatal("the new secret is still in Vault")
			}
		}
	}
	app := f.app(t, in)
	if len(app.Passwords) != 1 || !strings.EqualFold(app.Passwords[0].KeyID, old.keyID) {
		t.Fatalf("passwords after a failed rotation: %+v", app.Passwords)
	}
	if !f.sim.Admin().SecretMatches(f.simTID, app.ObjectID, old.keyID, f.vaultSecret(t, in)) {
		t.Fatal("the active secret is not the one Entra holds")
	}
}

func TestRotateCredentialRefused(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	ctx := f.operator(t)
	// Bad input: InvalidArgument naming the field.
	_, err := f.prov.RotateCredential(ctx, &v1.RotateCredentialRequest{Name: "organizations/x"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = f.prov.RotateCredential(ctx, &v1.RotateCredentialRequest{Name: f.tenant + "/integrations/" + uuid.NewString(), RequestId: "nope"})
	wantViolation(t, err, "request_id")
	// Unknown, and another organization's: NotFound.
	_, err = f.prov.RotateCredential(ctx, &v1.RotateCredentialRequest{Name: f.tenant + "/integrations/" + uuid.NewString()})
	wantCode(t, err, codes.NotFound)
	// Customer-managed: FailedPrecondition naming the fix.
	cm := newIntegration(t, f.s, ctx, f.tenant, "customer-secret-value")
	_, err = f.prov.RotateCredential(ctx, &v1.RotateCredentialRequest{Name: cm.GetName()})
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "UpdateIntegration") {
		t.Fatalf("message %q does not name the fix", st.Message())
	}
	other := f.s.NewOrg(t, "Other")
	_, err = f.prov.RotateCredential(other.OperatorCtx, &v1.RotateCredentialRequest{Name: cm.GetName()})
	wantCode(t, err, codes.NotFound)
	if n := countRows(t, f.s, "operations"); n != 0 {
		t.Fatalf("%d operations written by refused calls", n)
	}
}

func TestRotateCredentialDzctl(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": f.s.GRPCAddr, "DZCONNECT_API_KEY": f.org.Operator}
	app := cli.New(strings.NewReader(""), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	if code := app.Execute(context.Background(), []string{"credential", "rotate", in.GetName(), "--wait"}); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"client-secret", "verify", "activate", "State:             succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := app.Execute(context.Background(), []string{"credential", "list", in.GetName()}); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "active") || !strings.Contains(out.String(), "retiring") || !strings.Contains(out.String(), "OVERLAP ENDS") {
		t.Fatalf("credential list:\n%s", out.String())
	}
}
