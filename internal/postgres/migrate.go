package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

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
	log.InfoContext(ctx, "schema up to date", "version", v)
	return nil
}
