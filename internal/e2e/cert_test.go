package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/provision"
)

func (f provisionFixture) generateCert(t *testing.T, name, requestID string) *v1.Operation {
	t.Helper()
	resp, err := f.prov.GenerateCertificateCredential(f.operator(t), &v1.GenerateCertificateCredentialRequest{Name: name, RequestId: requestID})
	if err != nil {
		t.Fatalf("GenerateCertificateCredential: %v", err)
	}
	return resp.GetOperation()
}

// vaultValue reads a credential's Vault value (a secret, or a
// certificate's PEM) at its recorded version.
func (f provisionFixture) vaultValue(t *testing.T, c credRow) string {
	t.Helper()
	v, ok := secretAt(t, f.s, c.path, c.version)
	if !ok {
		t.Fatalf("no Vault value for credential %s", c.id)
	}
	return v
}

// credType reads a credential row's type.
func (f provisionFixture) credType(t *testing.T, c credRow) string {
	t.Helper()
	var typ string
	if err := f.s.DB.QueryRow(context.Background(), `select type from credentials where id = $1`, c.id).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}

// certToken asks msftsim for a token by client assertion with a
// certificate PEM (key and certificate), as dzconnect does, and returns
// the classified error.
func (f provisionFixture) certToken(t *testing.T, clientID, certPEM string) error {
	t.Helper()
	return simCertToken(t, f.sim, f.simTID, clientID, certPEM)
}

func simCertToken(t *testing.T, sim *msftsim.Sim, tenant, clientID, certPEM string) error {
	t.Helper()
	cert, err := microsoft.ParseCertificate([]byte(certPEM), nil)
	if err != nil {
		t.Fatalf("the Vault value is not a certificate with its key: %v", err)
	}
	cred, err := azidentity.NewClientCertificateCredential(tenant, clientID, cert.Chain, cert.Key,
		&azidentity.ClientCertificateCredentialOptions{DisableInstanceDiscovery: true, ClientOptions: azcore.ClientOptions{
			Cloud: sim.Endpoints().CloudConfiguration(), Transport: sim.HTTPClient(), Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{msftsim.ResourceGraph + "/.default"}})
	if err != nil {
		return mserr.Classify("entra", "token graph", err)
	}
	return nil
}

// keyMaterial returns a distinctive piece of a PEM's private key: what must
// never appear outside Vault.
func keyMaterial(t *testing.T, certPEM string) string {
	t.Helper()
	rest := []byte(certPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			t.Fatal("no private key in the Vault value")
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return base64.StdEncoding.EncodeToString(b.Bytes)[100:140]
		}
	}
}

// assertNotInPostgres fails when any row of any table holds s.
func (f provisionFixture) assertNotInPostgres(t *testing.T, what string, needles ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := f.s.DB.Query(ctx, `select quote_ident(table_schema) || '.' || quote_ident(table_name) from information_schema.tables
		where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var dump string
		if err := f.s.DB.QueryRow(ctx, `select coalesce(string_agg(t::text, E'\n'), '') from `+tb+` t`).Scan(&dump); err != nil {
			t.Fatalf("reading %s: %v", tb, err)
		}
		for _, n := range needles {
			if strings.Contains(dump, n) {
				t.Fatalf("%s found in Postgres table %s", what, tb)
			}
		}
	}
}

// TestGenerateCertificateCredential: a provisioned integration switches
// from its client secret to a certificate dzconnect generates, without
// downtime; checks then use the certificate (the retiring secret is no
// longer needed); a rotation rotates the certificate, whose predecessor
// the retire job removes from Entra, after which msftsim refuses it
// (AADSTS700027, class certificate-invalid); a key removed from the
// application breaks the integration with that classification; the
// private key is only in Vault.
func TestGenerateCertificateCredential(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	name := in.GetName()
	clientID := in.GetApplication().GetClientId()
	oldSecret := byState(f.credentials(t, name), "active")[0]
	f.setOverlap(t, time.Hour) // the secret's overlap: outlives the test

	// 1. Secret -> certificate.
	rid := uuid.NewString()
	op := f.generateCert(t, name, rid)
	if op.GetKind() != provision.RotateKindName || op.GetTarget() != name {
		t.Fatalf("operation %v", op)
	}
	if again := f.generateCert(t, name, rid); again.GetName() != op.GetName() {
		t.Fatalf("a retry with the same request_id: %s, want %s", again.GetName(), op.GetName())
	}
	done := f.wait(t, op.GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("generate: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	cs := f.credentials(t, name)
	active, retiring := byState(cs, "active"), byState(cs, "retiring")
	if len(active) != 1 || len(retiring) != 1 || retiring[0].id != oldSecret.id || f.credType(t, active[0]) != "certificate" {
		t.Fatalf("credentials after GenerateCertificateCredential: %+v", cs)
	}
	cert1 := active[0]
	cert1PEM := f.vaultValue(t, cert1)
	app := f.app(t, &v1.Integration{Application: in.GetApplication()})
	if len(app.KeyIDs) != 1 || !strings.EqualFold(app.KeyIDs[0], cert1.keyID) || len(app.Passwords) != 1 {
		t.Fatalf("Entra during the overlap: keys %v, passwords %+v", app.KeyIDs, app.Passwords)
	}
	if err := f.certToken(t, clientID, cert1PEM); err != nil {
		t.Fatalf("a token with the certificate in Vault: %v", err)
	}
	// The resource shows the certificate's metadata, never the key.
	got := f.integration(t, done)
	var shown *v1.IntegrationCredential
	for _, c := range got.GetCredentials() {
		if c.GetState() == v1.CredentialState_CREDENTIAL_STATE_ACTIVE {
			shown = c
		}
	}
	if shown == nil || shown.GetType() != v1.CredentialType_CREDENTIAL_TYPE_CERTIFICATE || shown.GetEndTime() == nil ||
		shown.GetEndTime().AsTime().After(time.Now().AddDate(2, 0, 1)) {
		t.Fatalf("active credential shown: %v", shown)
	}

	// 2. Checks use the certificate: with the retiring secret removed from
	// Entra behind dzconnect's back, the integration stays healthy.
	if err := f.sim.Admin().RemoveAppSecret(f.simTID, clientID, oldSecret.keyID); err != nil {
		t.Fatal(err)
	}
	chk := f.check(t, name)
	if chk.GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("check with the certificate: %v", chk)
	}

	// 3. RotateCredential now rotates the certificate.
	f.setOverlap(t, 3*time.Second)
	done = f.wait(t, f.rotate(t, name, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("rotate the certificate: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	cs = f.credentials(t, name)
	active = byState(cs, "active")
	if len(active) != 1 || active[0].id == cert1.id || f.credType(t, active[0]) != "certificate" {
		t.Fatalf("credentials after rotating the certificate: %+v", cs)
	}
	cert2 := active[0]
	cert2PEM := f.vaultValue(t, cert2)
	if app = f.app(t, &v1.Integration{Application: in.GetApplication()}); len(app.KeyIDs) != 2 {
		t.Fatalf("keys during the certificate's overlap: %v", app.KeyIDs)
	}
	// The overlap ends: the retire job removes the first certificate from
	// Entra (the second kept), then its private key from Vault.
	f.waitCredential(t, name, cert1.id, "removed")
	waitJobs(t, f.s, "destroy_secret")
	if _, ok := secretAt(t, f.s, cert1.path, cert1.version); ok {
		t.Fatal("the retired certificate's private key is still in Vault")
	}
	if app = f.app(t, &v1.Integration{Application: in.GetApplication()}); len(app.KeyIDs) != 1 || !strings.EqualFold(app.KeyIDs[0], cert2.keyID) {
		t.Fatalf("keys after the overlap: %v, want only %s", app.KeyIDs, cert2.keyID)
	}
	err := f.certToken(t, clientID, cert1PEM)
	var me *mserr.Error
	if !errors.As(err, &me) || me.Code != "AADSTS700027" || me.Class != mserr.ClassCertificateInvalid {
		t.Fatalf("a token with the removed certificate: %v", err)
	}
	if err := f.certToken(t, clientID, cert2PEM); err != nil {
		t.Fatalf("a token with the active certificate: %v", err)
	}

	// 4. The active key removed from the application: the check is broken,
	// its token step classified (AADSTS700027, a remedy naming the fix).
	if err := f.sim.Admin().RemoveAppKey(f.simTID, clientID, cert2.keyID); err != nil {
		t.Fatal(err)
	}
	chk = f.check(t, name)
	var tokenStep *v1.CheckStep
	for _, st := range chk.GetSteps() {
		if strings.HasPrefix(st.GetName(), "token:") && st.GetErrorCode() != "" {
			tokenStep = st
			break
		}
	}
	if chk.GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_BROKEN || tokenStep == nil || tokenStep.GetErrorCode() != "AADSTS700027" ||
		!strings.Contains(tokenStep.GetRemedy(), "GenerateCertificateCredential") {
		t.Fatalf("check after the key's removal: %v", chk)
	}

	// 5. The private keys are only in Vault: not in Postgres (any table),
	// the logs, or the API's answers.
	needles := []string{"PRIVATE KEY", keyMaterial(t, cert1PEM), keyMaterial(t, cert2PEM)}
	f.assertNotInPostgres(t, "a private key", needles...)
	got = f.integration(t, done)
	gotOp, err := f.ops.GetOperation(f.viewer(t), &v1.GetOperationRequest{Name: done.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"logs": f.s.Logs.String(), "integration": protojson.Format(got),
		"operation": protojson.Format(gotOp), "check": protojson.Format(chk)} {
		for _, n := range needles {
			if strings.Contains(s, n) {
				t.Fatalf("a private key in the %s", what)
			}
		}
	}
}

// check runs an on-demand check.
func (f provisionFixture) check(t *testing.T, name string) *v1.Check {
	t.Helper()
	r, err := f.s.Clients().Integrations.CheckIntegration(f.operator(t), &v1.CheckIntegrationRequest{Name: name})
	if err != nil {
		t.Fatalf("CheckIntegration: %v", err)
	}
	return r.GetCheck()
}

// TestGenerateCertificateCredentialRefusals: bad input is InvalidArgument
// naming the field, unknown and other organizations' integrations
// NotFound, customer-managed integrations FailedPrecondition; nothing is
// written.
func TestGenerateCertificateCredentialRefusals(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	ctx := f.operator(t)
	_, err := f.prov.GenerateCertificateCredential(ctx, &v1.GenerateCertificateCredentialRequest{Name: "organizations/x"})
	wantViolation(t, err, "name")
	_, err = f.prov.GenerateCertificateCredential(ctx, &v1.GenerateCertificateCredentialRequest{Name: f.tenant + "/integrations/" + uuid.NewString(), RequestId: "nope"})
	wantViolation(t, err, "request_id")
	_, err = f.prov.GenerateCertificateCredential(ctx, &v1.GenerateCertificateCredentialRequest{Name: f.tenant + "/integrations/" + uuid.NewString()})
	wantCode(t, err, codes.NotFound)
	cm := newIntegration(t, f.s, ctx, f.tenant, "customer-secret-value")
	_, err = f.prov.GenerateCertificateCredential(ctx, &v1.GenerateCertificateCredentialRequest{Name: cm.GetName()})
	if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "customer-managed") {
		t.Fatalf("message %q", st.Message())
	}
	other := f.s.NewOrg(t, "Other")
	_, err = f.prov.GenerateCertificateCredential(other.OperatorCtx, &v1.GenerateCertificateCredentialRequest{Name: cm.GetName()})
	wantCode(t, err, codes.NotFound)
	if n := countRows(t, f.s, "operations"); n != 0 {
		t.Fatalf("%d operations written by refused calls", n)
	}
}

// TestGenerateCertificateCredentialDzctl: dzctl credential generate-cert
// --wait, then credential list shows the certificate active; its validity
// fits the tenant's asymmetricKeyLifetime restriction (msftsim refuses a
// longer one).
func TestGenerateCertificateCredentialDzctl(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	if err := f.sim.Admin().SetPolicy(f.simTID, msftsim.PolicySpec{KeyMaxLifetime: "P90D"}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": f.s.GRPCAddr, "DZCONNECT_API_KEY": f.org.Operator}
	app := cli.New(strings.NewReader(""), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	if code := app.Execute(context.Background(), []string{"credential", "generate-cert", in.GetName(), "--wait"}); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"certificate", "verify", "activate", "State:             succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := app.Execute(context.Background(), []string{"credential", "list", in.GetName()}); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	found := false
	for _, l := range lines {
		if strings.Contains(l, "active") && strings.Contains(l, "certificate") {
			found = true
		}
	}
	if !found {
		t.Fatalf("credential list:\n%s", out.String())
	}
	var end time.Time
	if err := f.s.DB.QueryRow(context.Background(), `select end_time from credentials where state = 'active' and type = 'certificate'`).Scan(&end); err != nil {
		t.Fatal(err)
	}
	if end.After(time.Now().Add(90*24*time.Hour)) || end.Before(time.Now().Add(89*24*time.Hour)) {
		t.Fatalf("certificate ends %s, want within the policy's 90 days", end)
	}
}
