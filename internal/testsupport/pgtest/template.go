package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrateFunc brings the empty database at databaseURL to the current schema.
// It must close every connection it opened before returning.
type MigrateFunc func(ctx context.Context, databaseURL string) error

// NewDB returns the URL of, and a pool on, a new database for this test only,
// cloned from a template built once by migrate and identified by the content of
// migrations (every file's path and bytes), so editing a migration builds a new
// template. migrations may be nil and migrate may be nil for an empty database.
// The database is dropped (and the pool closed) at t.Cleanup.
func NewDB(t testing.TB, migrations fs.FS, migrate MigrateFunc) (databaseURL string, pool *pgxpool.Pool) {
	t.Helper()
	key, err := HashFS(migrations)
	if err != nil {
		t.Fatalf("pgtest: hashing migrations: %v", err)
	}
	return NewDBKey(t, key, migrate)
}

// NewDBKey is NewDB with the template identified by a caller-chosen key: the same
// key must always mean the same schema.
func NewDBKey(t testing.TB, key string, migrate MigrateFunc) (databaseURL string, pool *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := adminPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ensureTemplate(ctx, admin, key, migrate)
	if err != nil {
		t.Fatal(err)
	}

	name := "dz_t_" + sanitize(t.Name(), 40) + "_" + randomHex(6)
	if _, err := admin.Exec(ctx, "create database "+ident(name)+" template "+ident(tmpl)); err != nil {
		t.Fatalf("pgtest: creating database %s from %s: %v", name, tmpl, err)
	}
	u, err := adminURL()
	if err != nil {
		t.Fatal(err)
	}
	databaseURL, err = withDatabase(u, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.Exec(ctx, "drop database if exists "+ident(name)+" with (force)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	pool, err = pgxpool.New(ctx, databaseURL)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", name, err)
	}
	t.Cleanup(pool.Close) // runs before the drop: cleanups are last in, first out
	return databaseURL, pool
}

// HashFS returns a hex digest of every regular file in fsys (path and content, in
// lexical order), the template key NewDB derives from migrations. A nil fsys hashes
// like an empty one.
func HashFS(fsys fs.FS) (string, error) {
	h := sha256.New()
	if fsys != nil {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// templates remembers, per template name, the outcome of building it in this
// process, so only the first test of a binary pays for the lock and the check.
var templates sync.Map // name -> *templateResult

type templateResult struct {
	once sync.Once
	err  error
}

// ensureTemplate returns the name of the template database for key, creating and
// migrating it if no process has yet.
func ensureTemplate(ctx context.Context, admin *pgxpool.Pool, key string, migrate MigrateFunc) (string, error) {
	sum := sha256.Sum256([]byte(key))
	name := "dz_tmpl_" + hex.EncodeToString(sum[:8])
	v, _ := templates.LoadOrStore(name, &templateResult{})
	r := v.(*templateResult)
	r.once.Do(func() {
		r.err = buildTemplate(ctx, admin, name, int64(binary.BigEndian.Uint64(sum[8:16])), migrate)
		if r.err != nil {
			r.err = fmt.Errorf("pgtest: building template %s: %w", name, r.err)
		}
	})
	return name, r.err
}

// buildTemplate creates the template under a session advisory lock, so that test
// binaries sharing a server build it exactly once. It migrates a scratch database
// and renames it only when migrate succeeded, so a crash never leaves a
// half-migrated template behind.
func buildTemplate(ctx context.Context, admin *pgxpool.Pool, name string, lockID int64, migrate MigrateFunc) error {
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "select pg_advisory_lock($1)", lockID); err != nil {
		return fmt.Errorf("taking advisory lock: %w", err)
	}
	defer func() {
		// Unlock on a fresh context: ctx may be done, and a held session lock
		// would block every other test binary.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "select pg_advisory_unlock($1)", lockID); err != nil {
			conn.Conn().Close(uctx) // closing the session releases the lock
		}
	}()

	var exists bool
	if err := conn.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}

	scratch := name + "_build"
	if _, err := conn.Exec(ctx, "drop database if exists "+ident(scratch)+" with (force)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "create database "+ident(scratch)); err != nil {
		return err
	}
	if migrate != nil {
		u, err := adminURL()
		if err != nil {
			return err
		}
		scratchURL, err := withDatabase(u, scratch)
		if err != nil {
			return err
		}
		if err := migrate(ctx, scratchURL); err != nil {
			_, _ = conn.Exec(ctx, "drop database if exists "+ident(scratch)+" with (force)")
			return fmt.Errorf("migrating: %w", err)
		}
	}
	// Clones need a template nobody is connected to: forbid new connections and
	// end any the migration left open.
	for _, stmt := range []string{
		"alter database " + ident(scratch) + " with allow_connections false",
		"select pg_terminate_backend(pid, 10000) from pg_stat_activity where datname = '" + scratch + "'",
		"alter database " + ident(scratch) + " rename to " + ident(name),
		"alter database " + ident(name) + " with is_template true",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
