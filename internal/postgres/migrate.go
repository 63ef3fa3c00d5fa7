package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/dropzoneai/dzconnect/migrations"
)

// Migrate applies every pending migration from the embedded set. It holds a
// Postgres advisory lock meanwhile, so replicas starting together migrate
// once. It logs each applied version.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	return MigrateFS(ctx, databaseURL, migrations.FS, log)
}

// MigrateFS is Migrate with another migration set (tests).
func MigrateFS(ctx context.Context, databaseURL string, fsys fs.FS, log *slog.Logger) error {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return fmt.Errorf("opening database: %w", redactURLError(err))
	}
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("creating migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if err := migrateRiver(ctx, databaseURL, log); err != nil {
		return err
	}
	log.InfoContext(ctx, "schema up to date", "version", v)
	return nil
}

// riverLockKey is the advisory lock held while River's tables migrate.
const riverLockKey = 0x647a72697665 // "dzrive"

// migrateRiver applies the job queue's own migrations (River's tables live
// in the same schema), under an advisory lock so replicas do it once.
func migrateRiver(ctx context.Context, databaseURL string, log *slog.Logger) error {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("opening database: %w", redactURLError(err))
	}
	defer pool.Close()
	// A session advisory lock belongs to one connection: it is taken and
	// released on the same one (no transaction; River's migrator runs its
	// own).
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `select pg_advisory_lock($1)`, riverLockKey); err != nil {
		return fmt.Errorf("locking for job-queue migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `select pg_advisory_unlock($1)`, riverLockKey) //nolint:errcheck
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("job-queue migrator: %w", err)
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("applying job-queue migrations: %w", err)
	}
	for _, v := range res.Versions {
		log.InfoContext(ctx, "job-queue migration applied", "version", v.Version, "name", v.Name)
	}
	return nil
}
