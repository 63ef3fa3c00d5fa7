package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// TestGroupedRecordFindsItsIntegrationsByIndex: the sweep's grouped record
// (RecordExpectedChecks) reaches the integrations it writes through an
// index, not by reading every integration. Joined with the checks' arrays
// alone, Postgres's planner chose a scan of the whole table and a hash
// join for fleets below about 5,000 integrations, in every record: most of
// the sweep's Postgres time at 2,000 (BenchmarkSweep, session 9). The plan
// is read from auto_explain, sent to this connection as a notice.
func TestGroupedRecordFindsItsIntegrationsByIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, admin := stack.NewDB(t)
	org := uuid.New()
	for _, sql := range []string{
		`insert into organizations (id, display_name) values ('` + org.String() + `', 'plan')`,
		`insert into tenants (organization_id, id, entra_tenant_id, cloud, display_name)
		 select '` + org.String() + `', gen_random_uuid(), gen_random_uuid(), 'global', 't' || g from generate_series(1, 100) g`,
		`insert into integrations (organization_id, tenant_id, id, kind, management_mode, client_id, pending, state, version)
		 select t.organization_id, t.id, gen_random_uuid(), 'microsoft-365-defender', 'customer-managed', gen_random_uuid(), false, 'healthy', 1
		 from tenants t, generate_series(1, 20)`,
		`insert into credentials (organization_id, integration_id, id, secret_path, secret_version, source, state, end_time)
		 select organization_id, id, gen_random_uuid(), 'p/' || id, 1, 'customer', 'active', now() + interval '300 days' from integrations`,
		`analyze`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := admin.Query(ctx, `select tenant_id, id from integrations order by id limit 10`)
	if err != nil {
		t.Fatal(err)
	}
	type ref struct{ Tenant, ID uuid.UUID }
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ref])
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	var (
		mu    sync.Mutex
		plans []string
	)
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `load 'auto_explain'; set auto_explain.log_min_duration = 0; set auto_explain.log_level = notice`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := postgres.New(pool)

	end := time.Now().UTC().Truncate(time.Microsecond)
	es := make([]verify.Expected, len(refs))
	for i, r := range refs {
		es[i] = verify.Expected{Version: 1, State: integration.StateHealthy, Check: verify.Check{Org: org, Tenant: r.Tenant,
			Integration: r.ID, ID: uuid.Must(uuid.NewV7()), Outcome: integration.StateHealthy, Trigger: verify.TriggerSchedule,
			Summary: "plan", Start: end.Add(-time.Second), End: end, IntegrationVersion: 1}}
	}
	written, err := db.RecordExpectedMany(ctx, db.Conn(), es)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != len(es) {
		t.Fatalf("%d of %d checks written", len(written), len(es))
	}
	mu.Lock()
	defer mu.Unlock()
	var plan string
	for _, p := range plans {
		if strings.Contains(p, "Update on integrations") {
			plan = p
		}
	}
	if plan == "" {
		t.Fatalf("no plan of the grouped record among the %d notices: %q", len(plans), plans)
	}
	if strings.Contains(plan, "Seq Scan on integrations") {
		t.Fatalf("the grouped record of %d checks read every integration:\n%s", len(es), plan)
	}
}
