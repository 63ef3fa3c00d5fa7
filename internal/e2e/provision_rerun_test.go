package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/vault"
)

// TestProvisionStepsRerun runs every step of a finished provision again,
// as the operation runner does after a crash between a step's Microsoft
// call and its record, over the same Postgres, Vault and msftsim: nothing
// is made twice. Then it leaves what a crash between addPassword and the
// Vault write leaves (a tagged password no credential row records) and
// re-runs the client-secret step: the orphan is removed, a fresh secret
// replaces it, and the one password Entra holds is the one in Vault.
func TestProvisionStepsRerun(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	done := f.wait(t, f.provision(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER}, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("operation %v", done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A second process's view of the same stores.
	db := postgres.New(f.s.DB)
	secrets, err := vault.New(ctx, vault.Config{Addr: f.s.Vault.Addr, Token: f.s.Vault.Token, Mount: f.s.Vault.Mount})
	if err != nil {
		t.Fatal(err)
	}
	ms := stack.SimClient(t, f.sim)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	consents, err := consent.NewService(consent.Config{}, db, db, db, secrets, log)
	if err != nil {
		t.Fatal(err)
	}
	svc := provision.NewService(provision.Deps{Tx: db, Tenants: db, Integrations: db, Secrets: secrets, Keys: db, Audit: db,
		Consent: consents, Log: log,
		Open: func(c consent.Credentials) (provision.Directory, error) {
			return ms.NewDirectory(microsoft.Credentials{Cloud: c.Cloud, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret})
		}})

	n, err := operation.ParseName("name", done.GetName())
	if err != nil {
		t.Fatal(err)
	}
	params, err := json.Marshal(done.GetParams().AsMap())
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]json.RawMessage{}
	for _, s := range done.GetMetadata().GetSteps() {
		if s.GetOutputs() != nil {
			b, err := json.Marshal(s.GetOutputs().AsMap())
			if err != nil {
				t.Fatal(err)
			}
			outputs[s.GetName()] = b
		}
	}
	rerun := func(step operation.Step) {
		t.Helper()
		sc := operation.StepContext{Org: n.Org, Operation: n.ID, Kind: provision.KindName, Target: done.GetTarget(), Params: params,
			Step: step.Name, Attempt: 2, Outputs: outputs, Log: log}
		if _, err := step.Run(ctx, sc); err != nil {
			var se *operation.StepError
			if !errors.As(err, &se) || !se.Skipped() {
				t.Fatalf("re-running %s: %v", step.Name, err)
			}
		}
	}
	for _, step := range svc.Kind().Steps {
		if step.Name == provision.StepVerify {
			continue // reads only; it needs the checks' wiring
		}
		rerun(step)
	}
	in := f.integration(t, done)
	app := f.assertDirectory(t, done, in, integration.KindDefender)

	// A crash between addPassword and Vault: a tagged password that no
	// credential row records.
	dir, err := directoryFor(ctx, consents, db, f, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.AddPassword(ctx, app.ObjectID, provision.PasswordTag(n.ID), time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	in2, err := resource.ParseIntegration("name", in.GetName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DB.Exec(ctx, `delete from credentials where organization_id = $1 and integration_id = $2`, in2.Org, in2.Integration); err != nil {
		t.Fatal(err)
	}
	for _, step := range svc.Kind().Steps {
		if step.Name == provision.StepClientSecret {
			rerun(step)
		}
	}
	f.assertDirectory(t, done, in, integration.KindDefender)
}

func directoryFor(ctx context.Context, consents *consent.Service, db *postgres.DB, f provisionFixture, in *v1.Integration) (*microsoft.Directory, error) {
	n, err := resource.ParseIntegration("name", in.GetName())
	if err != nil {
		return nil, err
	}
	tn, err := db.GetTenant(ctx, db.Conn(), n.Org, n.Tenant)
	if err != nil {
		return nil, err
	}
	c, _, err := consents.ForTenant(ctx, n.Org, tn)
	if err != nil {
		return nil, err
	}
	clouds, err := microsoft.LoadEndpointsFile(filepath.Join(filepath.Dir(f.sim.Endpoints().CAFile), "endpoints.json"))
	if err != nil {
		return nil, err
	}
	ms, err := microsoft.New(microsoft.Config{Clouds: clouds})
	if err != nil {
		return nil, err
	}
	return ms.NewDirectory(microsoft.Credentials{Cloud: c.Cloud, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
