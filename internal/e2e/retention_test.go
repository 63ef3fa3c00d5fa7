package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres"
)

// TestRetention (issue 11 item 12e): the janitor's purges delete what is
// older than the cutoff — checks except each integration's latest, audit
// events, request IDs, finished webhook deliveries — in batches, and
// nothing newer.
func TestRetention(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(f.db, f.secrets)
	a, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "a~Secret.Value_1234567890abcdefghijklmn", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "b~Secret.Value_1234567890abcdefghijklmn", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := f.db.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	check := func(in integration.Integration, age time.Duration) {
		end := time.Now().Add(-age)
		exec(`insert into checks (organization_id, id, tenant_id, integration_id, outcome, trigger, summary, steps, start_time, end_time)
			values ($1, $2, $3, $4, 'healthy', 'schedule', 'ok', '[]', $5, $5)`, f.org, uuid.Must(uuid.NewV7()), f.tenant, in.ID, end)
	}
	// a: three old checks and a recent one; b: only old ones.
	for _, days := range []int{100, 99, 98} {
		age := time.Duration(days) * 24 * time.Hour
		check(a, age)
		check(b, age)
	}
	check(a, time.Hour)
	exec(`insert into audit_events (organization_id, actor, method, resource, request_id, create_time)
		values ($1, 'old', 'X', 'r', '', now() - interval '500 days')`, f.org)
	exec(`insert into idempotency_keys (organization_id, method, request_id, request_hash, resource_name, create_time)
		values ($1, 'Old', $2, '\x00', 'r', now() - interval '40 days'), ($1, 'New', $3, '\x00', 'r', now())`, f.org, uuid.New(), uuid.New())
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := f.db.Pool().QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	audits := count(`select count(*) from audit_events`)

	cutoff := time.Now().Add(-90 * 24 * time.Hour)
	// Batches of two: the first purge of checks stops at its limit.
	if n, err := f.db.PurgeBefore(ctx, postgres.RetainedChecks, cutoff, 2); err != nil || n != 2 {
		t.Fatalf("first batch: %d, %v", n, err)
	}
	for {
		n, err := f.db.PurgeBefore(ctx, postgres.RetainedChecks, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			break
		}
	}
	if n := count(`select count(*) from checks where integration_id = '` + a.ID.String() + `'`); n != 1 {
		t.Fatalf("integration a keeps %d checks, want its recent one", n)
	}
	var bLeft time.Time
	if err := f.db.Pool().QueryRow(ctx, `select max(end_time) from checks where integration_id = $1 having count(*) = 1`, b.ID).Scan(&bLeft); err != nil {
		t.Fatalf("integration b must keep exactly its latest check: %v", err)
	}
	if time.Since(bLeft) > 98*24*time.Hour+time.Hour {
		t.Fatalf("integration b kept a check from %v, not its latest", bLeft)
	}
	if n, err := f.db.PurgeBefore(ctx, postgres.RetainedAudit, time.Now().Add(-400*24*time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("audit purge: %d, %v", n, err)
	}
	if n := count(`select count(*) from audit_events`); n != audits-1 {
		t.Fatalf("audit events %d, want %d", n, audits-1)
	}
	if n, err := f.db.PurgeBefore(ctx, postgres.RetainedRequestIDs, time.Now().Add(-30*24*time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("request ID purge: %d, %v", n, err)
	}
	if n := count(`select count(*) from idempotency_keys where method = 'New'`); n != 1 {
		t.Fatal("a recent request ID was purged")
	}
	if n, err := f.db.PurgeBefore(ctx, postgres.RetainedDeliveries, cutoff, 100); err != nil || n != 0 {
		t.Fatalf("delivery purge with none finished: %d, %v", n, err)
	}
}
