package postgres

import (
	"context"
	"time"
)

// CountByState implements metrics.Fleet (all organizations; no IDs leave).
func (db *DB) CountByState(ctx context.Context) (map[string]int, error) {
	rows, err := db.pool.Query(ctx, `select state, count(*) from integrations where not pending group by state`)
	if err != nil {
		return nil, translate(err, "")
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, translate(err, "")
		}
		out[s] = n
	}
	return out, translate(rows.Err(), "")
}

// CountByExpiry implements metrics.Fleet.
func (db *DB) CountByExpiry(ctx context.Context, now time.Time) (map[string]int, error) {
	out := map[string]int{"expired": 0, "7d": 0, "30d": 0, "90d": 0, "later": 0, "unknown": 0}
	rows, err := db.pool.Query(ctx, `select case
			when credential_expire_time is null then 'unknown'
			when credential_expire_time <= $1 then 'expired'
			when credential_expire_time <= $1 + interval '7 days' then '7d'
			when credential_expire_time <= $1 + interval '30 days' then '30d'
			when credential_expire_time <= $1 + interval '90 days' then '90d'
			else 'later' end as w, count(*)
		from integrations where not pending group by w`, now)
	if err != nil {
		return nil, translate(err, "")
	}
	defer rows.Close()
	for rows.Next() {
		var w string
		var n int
		if err := rows.Scan(&w, &n); err != nil {
			return nil, translate(err, "")
		}
		out[w] = n
	}
	return out, translate(rows.Err(), "")
}
