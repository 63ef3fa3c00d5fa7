package postgres

import (
	"context"
	"math"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
)

// ListAuditEvents lists an organization's events, newest first. It is a
// read on its own (the handler's AuditLister), so it runs on the pool.
func (db *DB) ListAuditEvents(ctx context.Context, org uuid.UUID, f audit.Filter, p page.Request) ([]audit.Event, error) {
	before := p.AfterSeq
	if before == 0 {
		before = math.MaxInt64
	}
	rows, err := queries.ListAuditEvents(ctx, q(db.Conn()), query.ListAuditEventsParams{
		OrganizationID: org, Before: before, Resource: f.Resource, Lim: int32(p.Size + 1),
	})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]audit.Event, 0, len(rows))
	for _, r := range rows {
		out = append(out, audit.Event{Org: r.OrganizationID, Seq: r.ID, Actor: r.Actor, Method: r.Method, Resource: r.Resource,
			RequestID: r.RequestID, CreateTime: r.CreateTime})
	}
	return out, nil
}
