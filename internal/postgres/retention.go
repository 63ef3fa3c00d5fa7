package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/dropzoneai/dzconnect/internal/postgres/query"
)

// Retained names what retention purges.
type Retained string

// The purged records.
const (
	RetainedChecks     Retained = "checks"      // each integration's latest check is kept
	RetainedAudit      Retained = "audit"       // audit events
	RetainedRequestIDs Retained = "request-ids" // idempotency keys of creates
	RetainedDeliveries Retained = "deliveries"  // finished webhook deliveries
)

// PurgeBefore deletes up to lim records of what older than cutoff, oldest
// selection first; it returns how many it deleted (fewer than lim: done).
func (db *DB) PurgeBefore(ctx context.Context, what Retained, cutoff time.Time, lim int32) (int64, error) {
	var (
		n   int64
		err error
	)
	c := q(db.Conn())
	switch what {
	case RetainedChecks:
		n, err = queries.DeleteOldChecks(ctx, c, query.DeleteOldChecksParams{Cutoff: cutoff, Lim: lim})
	case RetainedAudit:
		n, err = queries.DeleteOldAuditEvents(ctx, c, query.DeleteOldAuditEventsParams{Cutoff: cutoff, Lim: lim})
	case RetainedRequestIDs:
		n, err = queries.DeleteOldRequestKeys(ctx, c, query.DeleteOldRequestKeysParams{Cutoff: cutoff, Lim: lim})
	case RetainedDeliveries:
		n, err = queries.DeleteOldWebhookDeliveries(ctx, c, query.DeleteOldWebhookDeliveriesParams{Cutoff: cutoff, Lim: lim})
	default:
		return 0, fmt.Errorf("retention: unknown record %q", what)
	}
	return n, translate(err, "")
}
