package pgtest

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { Main(m) }

// execMigrations is a minimal migrate callback: run every .sql file in order.
func execMigrations(migrations fs.FS, calls *atomic.Int32) MigrateFunc {
	return func(ctx context.Context, databaseURL string) error {
		calls.Add(1)
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		files, err := fs.Glob(migrations, "*.sql")
		if err != nil {
			return err
		}
		for _, f := range files {
			b, err := fs.ReadFile(migrations, f)
			if err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, string(b)); err != nil {
				return err
			}
		}
		return nil
	}
}

func notesFS(extra string) fstest.MapFS {
	return fstest.MapFS{
		"001_notes.sql": {Data: []byte(`create table notes (id bigint generated always as identity primary key, body text not null);` + extra)},
		"002_seed.sql":  {Data: []byte(`insert into notes (body) values ('from template');`)},
	}
}

func countNotes(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), "select count(*) from notes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewDBIsolatedAndMigratedOnce(t *testing.T) {
	migrations := notesFS("")
	var calls atomic.Int32
	migrate := execMigrations(migrations, &calls)
	for _, name := range []string{"a", "b", "c", "d"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, pool := NewDB(t, migrations, migrate)
			if got := countNotes(t, pool); got != 1 {
				t.Fatalf("fresh database has %d notes, want the 1 seeded by the template", got)
			}
			for range 3 {
				if _, err := pool.Exec(t.Context(), "insert into notes (body) values ($1)", name); err != nil {
					t.Fatal(err)
				}
			}
			if got := countNotes(t, pool); got != 4 {
				t.Fatalf("database has %d notes, want 4: another test wrote here", got)
			}
		})
	}
	t.Cleanup(func() {
		if got := calls.Load(); got > 1 {
			t.Errorf("migrate ran %d times for one set of migrations, want at most 1", got)
		}
	})
}

func TestNewDBNewTemplateWhenMigrationsChange(t *testing.T) {
	var calls atomic.Int32
	m1 := notesFS("")
	m2 := notesFS(` alter table notes add column author text;`)
	_, p1 := NewDB(t, m1, execMigrations(m1, &calls))
	_, p2 := NewDB(t, m2, execMigrations(m2, &calls))
	if _, err := p2.Exec(t.Context(), "insert into notes (body, author) values ('x', 'y')"); err != nil {
		t.Fatalf("database from changed migrations lacks the new column: %v", err)
	}
	if _, err := p1.Exec(t.Context(), "insert into notes (body, author) values ('x', 'y')"); err == nil {
		t.Fatal("database from the original migrations has the new column")
	}
	k1, _ := HashFS(m1)
	k2, _ := HashFS(m2)
	if k1 == k2 {
		t.Fatal("HashFS gives the same key for different migrations")
	}
}

func TestNewDBDroppedAtCleanup(t *testing.T) {
	var url string
	var name string
	t.Run("inner", func(t *testing.T) {
		var pool *pgxpool.Pool
		url, pool = NewDB(t, nil, nil)
		if err := pool.QueryRow(t.Context(), "select current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	if url == "" || name == "" {
		t.Fatal("inner test did not get a database")
	}
	admin, err := adminPool(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := admin.QueryRow(t.Context(), "select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test finished", name)
	}
}

func TestNewDBFromTemplateIsFast(t *testing.T) {
	migrations := notesFS(" create index notes_body_idx on notes (body);")
	var calls atomic.Int32
	NewDB(t, migrations, execMigrations(migrations, &calls)) // builds the template
	const n = 5
	start := time.Now()
	for range n {
		NewDB(t, migrations, execMigrations(migrations, &calls))
	}
	per := time.Since(start) / n
	t.Logf("database from template (create + connect): %s each", per)
	if per > 5*time.Second {
		t.Errorf("creating a database from the template took %s", per)
	}
}

// Test binaries racing to build the same template: each goroutine stands in for a
// process (its own pool, bypassing the in-process cache); the advisory lock must
// let exactly one migrate.
func TestBuildTemplateRaceBuildsOnce(t *testing.T) {
	var calls atomic.Int32
	migrations := notesFS(" -- race " + randomHex(4))
	migrate := execMigrations(migrations, &calls)
	name := "dz_tmpl_race_" + randomHex(4)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			pool, err := pgxpool.New(t.Context(), AdminURL(t))
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = buildTemplate(t.Context(), pool, name, 424242, migrate)
		})
	}
	wg.Wait()
	t.Cleanup(func() { dropTemplate(t, name) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("migrate ran %d times, want 1", got)
	}
	admin, _ := adminPool(t.Context())
	var isTemplate, allowConn bool
	if err := admin.QueryRow(t.Context(), "select datistemplate, datallowconn from pg_database where datname = $1", name).Scan(&isTemplate, &allowConn); err != nil {
		t.Fatal(err)
	}
	if !isTemplate || allowConn {
		t.Fatalf("template flags: is_template=%v allow_connections=%v, want true/false", isTemplate, allowConn)
	}
}

func TestBuildTemplateFailedMigrationLeavesNothing(t *testing.T) {
	name := "dz_tmpl_fail_" + randomHex(4)
	admin, err := adminPool(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = buildTemplate(t.Context(), admin, name, 434343, func(ctx context.Context, databaseURL string) error {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "create table half (id int)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("buildTemplate error = %v, want %v", err, boom)
	}
	var n int
	if err := admin.QueryRow(t.Context(), "select count(*) from pg_database where datname like $1", name+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d databases named %s* left after a failed migration", n, name)
	}
}

// A migrate callback that leaks a connection must not break cloning.
func TestBuildTemplateSurvivesLeakedConnection(t *testing.T) {
	var leaked *pgx.Conn
	t.Cleanup(func() {
		if leaked != nil {
			leaked.Close(context.Background())
		}
	})
	_, pool := NewDBKey(t, "leaky-"+randomHex(4), func(ctx context.Context, databaseURL string) error {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			return err
		}
		leaked = conn
		_, err = conn.Exec(ctx, "create table leaky (id int)")
		return err
	})
	if _, err := pool.Exec(t.Context(), "insert into leaky values (1)"); err != nil {
		t.Fatal(err)
	}
}

func dropTemplate(t *testing.T, name string) {
	admin, err := adminPool(context.Background())
	if err != nil {
		t.Error(err)
		return
	}
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "alter database "+ident(name)+" with is_template false"); err != nil {
		t.Error(err)
	}
	if _, err := admin.Exec(ctx, "drop database "+ident(name)); err != nil {
		t.Error(err)
	}
}

func TestSanitize(t *testing.T) {
	if got := sanitize("TestX/Sub-Case ü", 12); got != "testx_sub_ca" {
		t.Fatalf("sanitize = %q", got)
	}
}
