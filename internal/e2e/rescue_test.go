package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"google.golang.org/grpc/metadata"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestCheckOfDeadReplicaIsRescued: a replica killed in the middle of a
// tenant's check batch leaves the batch "running" in Postgres; another
// replica rescues it and the check is done, nothing lost.
func TestCheckOfDeadReplicaIsRescued(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	n, err := resource.ParseIntegration("name", in.GetName())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// What a replica killed mid-check leaves behind: its job, running
	// since long ago, attempted by a client that is gone.
	inserter, err := river.NewClient(riverpgxv5.New(f.s.DB), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := inserter.Insert(ctx, jobs.BatchArgs{Org: n.Org, Tenant: n.Tenant}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DB.Exec(ctx, `update river_job set state = 'running', attempt = 1,
		attempted_at = now() - interval '1 hour', attempted_by = array['dead-replica'] where id = $1`, res.Job.ID); err != nil {
		t.Fatal(err)
	}
	stack.Start(t, stack.Options{DatabaseURL: f.s.DatabaseURL, Vault: f.s.Vault, ExtraArgs: append(stack.SimArgs(f.sim),
		"--jobs=true", "--check-timeout=5s", "--check-batch-slice=5s", "--job-rescue-after=30s")})
	for {
		var state string
		if err := f.s.DB.QueryRow(ctx, `select state from river_job where id = $1`, res.Job.ID).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state == "completed" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the dead replica's job is still %s", state)
		case <-time.After(100 * time.Millisecond): // polling the job's state, not waiting for it
		}
	}
	// A fresh deadline: the fixture's contexts last 30 s, less than the
	// rescue takes (--job-rescue-after=30s).
	md, _ := metadata.FromOutgoingContext(f.org.ViewerCtx)
	lctx, lcancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 30*time.Second)
	defer lcancel()
	checks, err := f.s.Clients().Integrations.ListChecks(lctx, &v1.ListChecksRequest{Parent: in.GetName()})
	if err != nil || len(checks.GetChecks()) != 1 || checks.GetChecks()[0].GetTrigger() != "schedule" ||
		checks.GetChecks()[0].GetOutcome() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY {
		t.Fatalf("checks after the rescue: %v %v", checks, err)
	}
}

// TestMetrics: /metrics reports checks by outcome and the fleet by state.
func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	wantOutcome(t, f.check(t, in.GetName()), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
	resp, err := httpGet(f.s.InternalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`dzconnect_checks_total{outcome="healthy",trigger="api"} 1`,
		`dzconnect_integrations{state="healthy"} 1`,
		`dzconnect_credentials_expiring{management="customer-managed",window="later"} 1`,
		`dzconnect_credentials_expiring{management="provisioned",window="7d"} 0`,
		`dzconnect_credential_min_days_left{management="customer-managed"} 299.9`,
		`dzconnect_check_duration_seconds_count{trigger="api"} 1`,
	} {
		if !strings.Contains(resp, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(resp, f.org.Name) || strings.Contains(resp, f.simTID) {
		t.Error("/metrics leaks organization or tenant IDs")
	}
}
