package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/crashpoint"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/provision"
)

// rotateKillPoints: one rotation killed at each, in step order — inside
// the client-secret step between addPassword and Vault and between Vault
// and the row, after its work before its record, at a step boundary, and
// after activation committed before its record.
func rotateKillPoints() []string {
	p := func(step, where string) string { return crashpoint.Name(provision.RotateKindName, step, where) }
	return []string{
		p(provision.RotateStepPolicy, "recorded"),
		p(provision.RotateStepSecret, "after_call"),  // password in Entra only (its value lost)
		p(provision.RotateStepSecret, "after_vault"), // in Entra and Vault, no credential row
		p(provision.RotateStepSecret, "returned"),    // row written, step not recorded
		p(provision.RotateStepVerify, "recorded"),
		p(provision.RotateStepActivate, "returned"), // new active, old retiring, step not recorded
	}
}

// certKillPoints: a certificate generation (the rotate kind's certificate
// variant) killed at each, in step order — inside the certificate step
// between Vault and the upload and between the upload and the row, after
// its work before its record, at the verify boundary, and after
// activation committed before its record.
func certKillPoints() []string {
	p := func(step, where string) string { return crashpoint.Name(provision.RotateKindName, step, where) }
	return []string{
		p(provision.RotateStepCert, "after_vault"), // private key in Vault only, nothing in Entra
		p(provision.RotateStepCert, "after_call"),  // in Vault and Entra, no credential row
		p(provision.RotateStepCert, "returned"),    // row written, step not recorded
		p(provision.RotateStepVerify, "recorded"),
		p(provision.RotateStepActivate, "returned"), // certificate active, secret retiring, step not recorded
	}
}

// TestRotateKill provisions an integration, then rotates its secret with
// the serve process SIGKILLed at every rotate kill point, and asserts after
// completion: exactly one live dzconnect password besides the retiring
// one, the active credential's secret is the one Entra holds, and no
// orphan password tagged with the rotation.
func TestRotateKill(t *testing.T) {
	t.Parallel()
	k := newKillFixture(t, serveBinary(t))
	p := k.start(t, "")
	provOp := k.provision(t, p)
	k.waitDone(t, p, provOp)
	k.assertProvisioned(t, p, provOp)
	_ = p.cmd.Process.Kill()
	<-p.exited
	var integ string
	if err := k.s.DB.QueryRow(context.Background(), `select target from operations where kind = 'provision'`).Scan(&integ); err != nil {
		t.Fatal(err)
	}
	var old credRow
	for _, c := range k.credentials(t, integ) {
		if c.state == "active" {
			old = c
		}
	}

	var opName string
	for i, point := range rotateKillPoints() {
		ok := t.Run(point, func(t *testing.T) {
			p := k.start(t, point)
			if i == 0 {
				conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				resp, err := v1.NewProvisioningServiceClient(conn).RotateCredential(k.operator(t),
					&v1.RotateCredentialRequest{Name: integ, RequestId: uuid.NewString()}, grpc.WaitForReady(true))
				if err != nil {
					t.Fatalf("RotateCredential: %v", err)
				}
				opName = resp.GetOperation().GetName()
			}
			k.waitKilled(t, p, opName, point)
			// Whatever the kill interrupted: the old password and at most
			// one new one.
			apps, err := k.sim.Admin().Applications(k.simTID, func(s msftsim.AppState) bool { return strings.HasPrefix(s.UniqueName, "dzconnect-") })
			if err != nil || len(apps) != 1 || len(apps[0].Passwords) > 2 {
				t.Fatalf("applications %+v, %v", apps, err)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
	t.Run("resume", func(t *testing.T) {
		p := k.start(t, "")
		k.waitDone(t, p, opName)
		if s := k.opState(t, opName); s != "succeeded" {
			t.Fatalf("rotation %s", s)
		}
		n, err := operation.ParseName("name", opName)
		if err != nil {
			t.Fatal(err)
		}
		cs := k.credentials(t, integ)
		active, retiring := byState(cs, "active"), byState(cs, "retiring")
		if len(active) != 1 || len(retiring) != 1 || retiring[0].id != old.id || active[0].id != provision.CredentialID(n.ID) {
			t.Fatalf("credentials after the rotation: %+v", cs)
		}
		apps, err := k.sim.Admin().Applications(k.simTID, func(s msftsim.AppState) bool { return strings.HasPrefix(s.UniqueName, "dzconnect-") })
		if err != nil || len(apps) != 1 {
			t.Fatalf("%d applications, %v", len(apps), err)
		}
		app := apps[0]
		live := map[string]bool{}
		for _, pw := range app.Passwords {
			live[strings.ToLower(pw.KeyID)] = true
			if pw.DisplayName == provision.PasswordTag(n.ID) && !strings.EqualFold(pw.KeyID, active[0].keyID) {
				t.Fatalf("orphan password tagged with the rotation: %+v", pw)
			}
		}
		if len(app.Passwords) != 2 || !live[strings.ToLower(active[0].keyID)] || !live[strings.ToLower(old.keyID)] {
			t.Fatalf("passwords %+v, want the active one and the retiring one", app.Passwords)
		}
		sec, ok := secretAt(t, k.s, active[0].path, active[0].version)
		if !ok || !k.sim.Admin().SecretMatches(k.simTID, app.ObjectID, active[0].keyID, sec) {
			t.Fatal("the active credential's secret is not the one Entra holds")
		}
	})
	if t.Failed() {
		return
	}

	// The chain goes on: the integration switches to a certificate
	// (GenerateCertificateCredential), killed at every certificate point.
	secret := byState(k.credentials(t, integ), "active")[0]
	opName = ""
	for i, point := range certKillPoints() {
		ok := t.Run(point, func(t *testing.T) {
			p := k.start(t, point)
			if i == 0 {
				conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				resp, err := v1.NewProvisioningServiceClient(conn).GenerateCertificateCredential(k.operator(t),
					&v1.GenerateCertificateCredentialRequest{Name: integ, RequestId: uuid.NewString()}, grpc.WaitForReady(true))
				if err != nil {
					t.Fatalf("GenerateCertificateCredential: %v", err)
				}
				opName = resp.GetOperation().GetName()
			}
			k.waitKilled(t, p, opName, point)
			// Whatever the kill interrupted: at most one generated key
			// (besides the caller's certificate of the provisioning).
			apps, err := k.sim.Admin().Applications(k.simTID, func(s msftsim.AppState) bool { return strings.HasPrefix(s.UniqueName, "dzconnect-") })
			if err != nil || len(apps) != 1 || len(generatedKeys(apps[0])) > 1 {
				t.Fatalf("applications %+v, %v", apps, err)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
	t.Run("resume-certificate", func(t *testing.T) {
		p := k.start(t, "")
		k.waitDone(t, p, opName)
		if s := k.opState(t, opName); s != "succeeded" {
			t.Fatalf("certificate generation %s", s)
		}
		n, err := operation.ParseName("name", opName)
		if err != nil {
			t.Fatal(err)
		}
		cs := k.credentials(t, integ)
		active, retiring := byState(cs, "active"), byState(cs, "retiring")
		if len(active) != 1 || active[0].id != provision.CredentialID(n.ID) || len(retiring) != 2 ||
			(retiring[0].id != secret.id && retiring[1].id != secret.id) {
			t.Fatalf("credentials after the certificate: %+v", cs)
		}
		apps, err := k.sim.Admin().Applications(k.simTID, func(s msftsim.AppState) bool { return strings.HasPrefix(s.UniqueName, "dzconnect-") })
		if err != nil || len(apps) != 1 {
			t.Fatalf("%d applications, %v", len(apps), err)
		}
		app := apps[0]
		// Exactly the active certificate's key among the generated ones in
		// Entra (no orphan from the killed attempts), the caller's
		// certificate and the secrets untouched.
		gen := generatedKeys(app)
		if len(gen) != 1 || !strings.EqualFold(gen[0][0], active[0].keyID) || gen[0][1] != provision.PasswordTag(n.ID) ||
			len(app.KeyIDs) != 2 {
			t.Fatalf("keys %v %v, want the caller's and %s", app.KeyIDs, app.KeyNames, active[0].keyID)
		}
		if len(app.Passwords) != 2 {
			t.Fatalf("passwords %+v, want the two retiring secrets", app.Passwords)
		}
		// None lost: the private key Vault holds signs tokens Entra accepts.
		pemValue, ok := secretAt(t, k.s, active[0].path, active[0].version)
		if !ok {
			t.Fatal("the active certificate's private key is not in Vault")
		}
		if err := simCertToken(t, k.sim, k.simTID, app.AppID, pemValue); err != nil {
			t.Fatalf("a token with the certificate in Vault: %v", err)
		}
	})
}

// generatedKeys are the application's key credentials dzconnect generated
// (named with an operation's tag): [key ID, name] pairs.
func generatedKeys(app msftsim.AppState) [][2]string {
	var out [][2]string
	for i, id := range app.KeyIDs {
		if strings.HasPrefix(app.KeyNames[i], "dzconnect op=") {
			out = append(out, [2]string{id, app.KeyNames[i]})
		}
	}
	return out
}
