package postgres

import (
	"context"
	"time"

	"github.com/dropzoneai/dzconnect/internal/metrics"
)

// CountByState implements metrics.Fleet (all organizations; no IDs leave).
func (db *DB) CountByState(ctx context.Context) (map[string]int, error) {
	rows, err := queries.CountIntegrationsByState(ctx, db.pool)
	if err != nil {
		return nil, translate(err, "")
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.State] = int(r.N)
	}
	return out, nil
}

// CountByExpiry implements metrics.Fleet: visible integrations by
// management mode and how soon their active credential expires, with the
// earliest end in each window.
func (db *DB) CountByExpiry(ctx context.Context, now time.Time) ([]metrics.ExpiryCount, error) {
	rows, err := queries.CountIntegrationsByExpiry(ctx, db.pool, now)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]metrics.ExpiryCount, 0, len(rows))
	for _, r := range rows {
		c := metrics.ExpiryCount{Management: r.ManagementMode, Window: r.Bucket, N: int(r.N)}
		if r.Bucket != "unknown" {
			end := r.EarliestEnd
			c.EarliestEnd = &end
		}
		out = append(out, c)
	}
	return out, nil
}
