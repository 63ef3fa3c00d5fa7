package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/testsupport/pgtest"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// sweepIndexes are indexes the sweep's statements plan with: a batch's
// page of targets and River's job fetch.
var sweepIndexes = []string{"integrations_organization_id_tenant_id_id_idx", "river_job_prioritized_fetching_index"}

// cachedIndexes counts the sweep indexes whose relcache entry this
// connection's backend holds (an "index info" memory context each).
func cachedIndexes(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), `select count(distinct ident) from pg_backend_memory_contexts
		where name = 'index info' and ident = any($1)`, sweepIndexes).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNewConnectionsPlanTheSweepStatements: the pool opens its MinConns
// connections, and every new connection plans the sweep's statements
// before it serves (postgres/warm.go), so that a replica's first sweep
// does not pay its new Postgres backends' cold catalog caches (about 0.2
// ms of Postgres CPU per check at 2,000; BenchmarkSweep, session 10). A
// connection that did not warm up has none of the sweep's indexes cached.
func TestNewConnectionsPlanTheSweepStatements(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL, _ := stack.NewDB(t)

	cold, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close(ctx)
	if n := cachedIndexes(t, cold); n != 0 {
		t.Fatalf("a new connection that was not warmed holds %d of the sweep's indexes, want 0", n)
	}

	db, err := postgres.Open(ctx, dbURL, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.WaitWarm(ctx)
	if err != nil || n != 3 {
		t.Fatalf("WaitWarm: %d connections, %v; want 3, nil", n, err)
	}
	// Every connection the pool holds, the three it opened and one more
	// made on demand, was warmed. (Released before db.Close, which waits
	// for them, also when the test fails.)
	for range 4 {
		c, err := db.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if n := cachedIndexes(t, c); n != len(sweepIndexes) {
			t.Fatalf("a pooled connection holds %d of the sweep's %d indexes", n, len(sweepIndexes))
		}
	}
}

// TestWarmUpFailureIsReportedAndConnectionsServe: on a database the
// statements cannot be planned in (not migrated), WaitWarm reports the
// statement that failed, and the connections serve all the same: a
// replica logs it and goes on.
func TestWarmUpFailureIsReportedAndConnectionsServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := "warm_empty_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if _, err := admin.Exec(ctx, `create database `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `drop database if exists `+pgx.Identifier{name}.Sanitize()+` with (force)`)
	})
	u, err := url.Parse(pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := postgres.Open(ctx, u.String(), 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.WaitWarm(ctx)
	if n != 2 || err == nil {
		t.Fatalf("WaitWarm on a database without the schema: %d connections, %v; want 2 and the failure", n, err)
	}
	if want := "planning ListDueTenants"; !strings.Contains(err.Error(), want) {
		t.Fatalf("WaitWarm's error %q does not name the statement (%q)", err, want)
	}
	var one int
	if err := db.Pool().QueryRow(ctx, `select 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("a connection whose warm-up failed does not serve: %v", err)
	}
}
