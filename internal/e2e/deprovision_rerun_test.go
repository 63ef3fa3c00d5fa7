package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/vault"
)

// TestDeprovisionStepsRerun runs every step of a finished deprovision
// again, as the runner does after a crash between a step's side effect and
// its record, over the same Postgres, Vault and msftsim: each finds its
// work done (404 on delete is success, the row already gone, the
// generation never bumped twice) and nothing reappears.
func TestDeprovisionStepsRerun(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	pdone, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	app := f.assertDirectory(t, pdone, in, "microsoft-365-defender")
	secrets := f.secretRefs(t, in.GetName())
	done := f.wait(t, f.deprovision(t, in.GetName(), false, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v", done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A second process's view of the same stores.
	db := postgres.New(f.s.DB)
	sec, err := vault.New(ctx, vault.Config{Addr: f.s.Vault.Addr, Token: f.s.Vault.Token, Mount: f.s.Vault.Mount})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := jobs.NewInserter(f.s.DB)
	if err != nil {
		t.Fatal(err)
	}
	ms := stack.SimClient(t, f.sim)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	consents, err := consent.NewService(consent.Config{}, db, db, db, sec, log)
	if err != nil {
		t.Fatal(err)
	}
	svc := provision.NewService(provision.Deps{Tx: db, Tenants: db, Integrations: db, Secrets: sec, GC: jobs.NewSecretGC(ins),
		Generations: db, Keys: db, Audit: db, Consent: consents, Log: log,
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
	ran := 0
	for _, step := range svc.DeprovisionKind().Steps {
		if step.Name == provision.DStepLocate {
			continue // reads: a re-run after the deletes finds nothing, which is not what its record says
		}
		sc := operation.StepContext{Org: n.Org, Operation: n.ID, Kind: provision.DeprovisionKindName, Target: done.GetTarget(),
			Params: params, Step: step.Name, Attempt: 2, Outputs: outputs, Log: log}
		out, err := step.Run(ctx, sc)
		if err != nil {
			var se *operation.StepError
			if !errors.As(err, &se) || !se.Skipped() {
				t.Fatalf("re-running %s: %v", step.Name, err)
			}
			continue
		}
		ran++
		if step.Name == provision.DStepRecords && (out["next_generation"] != float64(2) || out["destroyed_secrets"] != float64(0)) {
			t.Fatalf("records re-run: %v (want generation 2, nothing left to destroy)", out)
		}
	}
	if ran < 4 {
		t.Fatalf("only %d steps ran again", ran)
	}
	f.assertNothingLeft(t, app, in.GetApplication().GetServicePrincipalObjectId(), "")
	f.assertGone(t, in.GetName(), secrets)
	if apps, err := f.sim.Admin().Applications(f.simTID, func(s msftsim.AppState) bool { return s.UniqueName == app.UniqueName }); err != nil || len(apps) != 0 {
		t.Fatalf("applications: %+v, %v", apps, err)
	}
}
