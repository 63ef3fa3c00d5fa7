package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestSweepTwoReplicasCheckEachOnce: two service instances share the
// database and the job queue; one sweep checks every integration exactly
// once, whichever replica runs it (one batch for the one tenant).
func TestSweepTwoReplicasCheckEachOnce(t *testing.T) {
	t.Parallel()
	// Any of the three servers may run the sweep: none spreads the batches.
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--sweep-jitter", "0s")
	const n = 12
	for range n {
		f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	}
	jobArgs := append(stack.SimArgs(f.sim), "--jobs=true", "--sweep-jitter", "0s", "--check-concurrency", "4")
	a := stack.Start(t, stack.Options{DatabaseURL: f.s.DatabaseURL, Vault: f.s.Vault, ExtraArgs: jobArgs})
	b := stack.Start(t, stack.Options{DatabaseURL: f.s.DatabaseURL, Vault: f.s.Vault, ExtraArgs: jobArgs})
	// The leader's sweep at start may have run before the integrations
	// existed (f.s starts first and may be elected), and the next periodic
	// one is minutes away: sweep now, as the next tick would.
	inserter, err := river.NewClient(riverpgxv5.New(b.DB), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.Insert(context.Background(), jobs.SweepArgs{}, nil); err != nil {
		t.Fatal(err)
	}

	// Generous: three servers and msftsim share the test machine with the
	// other parallel tests (-race); the loop ends as soon as the work is done.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var checked, pending int
	for {
		if err := a.DB.QueryRow(context.Background(), `select count(*) from checks where trigger = 'schedule'`).Scan(&checked); err != nil {
			t.Fatal(err)
		}
		if err := a.DB.QueryRow(context.Background(), `select count(*) from river_job where kind = 'check_tenant_batch' and state <> 'completed'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if checked >= n && pending == 0 {
			break
		}
		select {
		case <-ctx.Done():
			rows, _ := a.DB.Query(context.Background(), `select kind || ' ' || state || ' ' || coalesce(errors::text, '') from river_job`)
			jobs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("after 3m: %d scheduled checks, %d batch jobs unfinished; jobs %v", checked, pending, jobs)
		case <-time.After(100 * time.Millisecond): // polling the database for the outcome, not waiting for it to happen
		}
	}
	var perIntegration int
	if err := a.DB.QueryRow(ctx, `select max(c) from (select count(*) c from checks group by integration_id) x`).Scan(&perIntegration); err != nil {
		t.Fatal(err)
	}
	if checked != n || perIntegration != 1 {
		t.Fatalf("%d scheduled checks for %d integrations (max %d per integration), want exactly one each", checked, n, perIntegration)
	}
	// A second sweep in the same period enqueues nothing new.
	res, err := inserter.Insert(ctx, jobs.SweepArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var state string
		if err := a.DB.QueryRow(ctx, `select state from river_job where id = $1`, res.Job.ID).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state == "completed" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("second sweep still %s", state)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var batches int
	if err := a.DB.QueryRow(ctx, `select count(*) from river_job where kind = 'check_tenant_batch'`).Scan(&batches); err != nil {
		t.Fatal(err)
	}
	if batches != 1 {
		t.Fatalf("%d batch jobs after a second sweep in the same period, want 1", batches)
	}
	list, err := f.s.Clients().Integrations.ListIntegrations(f.org.ViewerCtx, &v1.ListIntegrationsRequest{Parent: f.tenant, State: v1.IntegrationState_INTEGRATION_STATE_HEALTHY})
	if err != nil || len(list.GetIntegrations()) != n {
		t.Fatalf("healthy after the sweep: %d, %v", len(list.GetIntegrations()), err)
	}
}
