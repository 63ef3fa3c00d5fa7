package e2e

import (
	"context"
	"database/sql"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"

	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/migrations"
)

// TestCredentialsMigration: migration 00005 moves each integration's
// credential columns into a credential row (active, or pending for a
// pending integration) and its down migration puts them back.
func TestCredentialsMigration(t *testing.T) {
	t.Parallel()
	url, pool := stack.NewDB(t)
	ctx := context.Background()
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("down to 4: %v", err)
	}
	org, tenant, live, pending := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	if _, err := pool.Exec(ctx, `insert into organizations (id, display_name) values ($1, 'M')`, org); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `insert into tenants (organization_id, id, entra_tenant_id, cloud, display_name)
		values ($1, $2, gen_random_uuid(), 'global', 'T')`, org, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `insert into integrations (organization_id, tenant_id, id, kind, management_mode, client_id,
			secret_path, secret_version, credential_key_id, credential_hint, credential_create_time, credential_expire_time,
			expiry_warned_time, pending)
		values ($1, $2, $3, 'microsoft-365-defender', 'customer-managed', gen_random_uuid(), 'p/live', 3, gen_random_uuid(), 'abc',
			now() - interval '1 day', now() + interval '20 days', now(), false),
		       ($1, $2, $4, 'microsoft-365-defender', 'customer-managed', gen_random_uuid(), 'p/pending', 0, null, null, null, null, null, true)`,
		org, tenant, live, pending); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatalf("up to 5: %v", err)
	}
	type row struct {
		path, state, source, hint string
		version                   int64
		warned, ended             bool
	}
	read := func(id uuid.UUID) row {
		var r row
		if err := pool.QueryRow(ctx, `select secret_path, state, source, coalesce(hint, ''), secret_version,
				expiry_warned_time is not null, end_time is not null
			from credentials where organization_id = $1 and integration_id = $2`, org, id).
			Scan(&r.path, &r.state, &r.source, &r.hint, &r.version, &r.warned, &r.ended); err != nil {
			t.Fatalf("credential of %v: %v", id, err)
		}
		return r
	}
	if got, want := read(live), (row{"p/live", "active", "customer", "abc", 3, true, true}); got != want {
		t.Fatalf("live integration's credential = %+v, want %+v", got, want)
	}
	if got, want := read(pending), (row{"p/pending", "pending", "customer", "", 0, false, false}); got != want {
		t.Fatalf("pending integration's credential = %+v, want %+v", got, want)
	}
	var version int
	if err := pool.QueryRow(ctx, `select get_byte(uuid_send(id), 6) >> 4 from credentials limit 1`).Scan(&version); err != nil || version != 7 {
		t.Fatalf("credential IDs are UUID version %d (%v), want 7", version, err)
	}
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("down to 4 again: %v", err)
	}
	var path, hint string
	var sv int64
	if err := pool.QueryRow(ctx, `select secret_path, secret_version, credential_hint from integrations where id = $1`, live).
		Scan(&path, &sv, &hint); err != nil || path != "p/live" || sv != 3 || hint != "abc" {
		t.Fatalf("restored columns: %q %d %q, %v", path, sv, hint, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
