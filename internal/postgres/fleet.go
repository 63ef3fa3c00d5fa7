package postgres

import (
	"context"
	"time"
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

// CountByExpiry implements metrics.Fleet: visible integrations by how soon
// their active credential expires.
func (db *DB) CountByExpiry(ctx context.Context, now time.Time) (map[string]int, error) {
	out := map[string]int{"expired": 0, "7d": 0, "30d": 0, "90d": 0, "later": 0, "unknown": 0}
	rows, err := queries.CountIntegrationsByExpiry(ctx, db.pool, now)
	if err != nil {
		return nil, translate(err, "")
	}
	for _, r := range rows {
		out[r.Bucket] = int(r.N)
	}
	return out, nil
}
