package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dropzoneai/dzconnect/internal/postgres/query"
)

// sweepStatements are the statements a fleet sweep runs on the
// connections it uses: the tenants due, a batch's page of targets, the
// grouped record of checks, the webhook deliveries of state changes, and
// River's job fetch.
var sweepStatements = []string{query.ListDueTenants, query.ListDueCheckTargets, query.RecordExpectedChecks,
	query.InsertWebhookDeliveriesMany, riverFetch}

// riverFetch stands for River's job fetch, whose text is River's own: the
// same table, indexes and operators, so that River's statements find the
// catalog caches warm.
const riverFetch = `-- name: WarmRiverJobFetch
select id from river_job where state = 'available' and queue = $1 and scheduled_at <= $2
order by priority, scheduled_at, id limit $3 for update skip locked`

// warm plans the sweep's statements once on a new connection (EXPLAIN,
// nothing executed), so that the backend's catalog caches (relations,
// indexes, operators) are loaded before the connection serves a sweep. A
// new backend otherwise loads them while planning its first statements:
// about 0.2 ms of Postgres CPU per check in the first sweep of a replica
// at 2,000 integrations (docs/verification.md, session 10). Parameters
// are ordinary values of each statement's types; the plans are thrown
// away, and the statements' own prepared plans are left to their first
// executions.
func warm(ctx context.Context, c *pgx.Conn) error {
	for _, sql := range sweepStatements {
		sd, err := c.PgConn().Prepare(ctx, "", "explain "+sql, nil)
		if err != nil {
			return fmt.Errorf("warming a new connection: planning %s: %w", QueryName(sql), err)
		}
		values := make([][]byte, len(sd.ParamOIDs))
		for i, oid := range sd.ParamOIDs {
			values[i] = warmValue(oid)
		}
		if _, err := c.PgConn().ExecPrepared(ctx, "", values, nil, nil).Close(); err != nil {
			return fmt.Errorf("warming a new connection: planning %s: %w", QueryName(sql), err)
		}
	}
	return nil
}

// warmValue is a parameter of type oid in text format: an ordinary value
// (not NULL, which the planner folds away), or NULL for other types.
func warmValue(oid uint32) []byte {
	id := uuid.NewString()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	switch oid {
	case pgtype.UUIDOID:
		return []byte(id)
	case pgtype.UUIDArrayOID:
		return []byte("{" + id + "}")
	case pgtype.TextOID, pgtype.VarcharOID:
		return []byte("x")
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID:
		return []byte("{x}")
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return []byte("1")
	case pgtype.Int2ArrayOID, pgtype.Int4ArrayOID, pgtype.Int8ArrayOID:
		return []byte("{1}")
	case pgtype.BoolOID:
		return []byte("f")
	case pgtype.BoolArrayOID:
		return []byte("{f}")
	case pgtype.TimestamptzOID:
		return []byte(now)
	case pgtype.TimestamptzArrayOID:
		return []byte(`{"` + now + `"}`)
	case pgtype.JSONBOID:
		return []byte("{}")
	case pgtype.JSONBArrayOID:
		return []byte(`{"{}"}`)
	}
	return nil
}
