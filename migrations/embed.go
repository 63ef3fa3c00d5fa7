// Package migrations embeds dzconnect's numbered SQL migrations, applied by
// goose through `dzconnect migrate` or at start-up (internal/postgres).
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
