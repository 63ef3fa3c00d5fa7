package postgres

import (
	"context"
	"math"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/page"
)

// ListAuditEvents lists an organization's events, newest first.
func (db *DB) ListAuditEvents(ctx context.Context, org uuid.UUID, f audit.Filter, p page.Request) ([]audit.Event, error) {
	before := p.AfterSeq
	if before == 0 {
		before = math.MaxInt64
	}
	rows, err := db.pool.Query(ctx, `select organization_id, id, actor, method, resource, request_id, create_time
		from audit_events where organization_id = $1 and id < $2 and ($3 = '' or resource = $3)
		order by id desc limit $4`, org, before, f.Resource, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Event, error) {
		var e audit.Event
		return e, r.Scan(&e.Org, &e.Seq, &e.Actor, &e.Method, &e.Resource, &e.RequestID, &e.CreateTime)
	})
	return out, translate(err, "")
}
