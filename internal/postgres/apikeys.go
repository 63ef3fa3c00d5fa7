package postgres

import (
	"context"
	"github.com/dropzoneai/dzconnect/internal/apperr"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

var _ auth.Store = (*DB)(nil)

const keyColumns = `organization_id, id, display_name, role, key_prefix, key_hash, expire_time, create_time, update_time, version`

func scanKey(row pgx.Row) (auth.APIKey, error) {
	var k auth.APIKey
	err := row.Scan(&k.Org, &k.ID, &k.DisplayName, &k.Role, &k.KeyPrefix, &k.Hash, &k.ExpireTime, &k.CreateTime, &k.UpdateTime, &k.Version)
	return k, err
}

// CreateAPIKey implements auth.Store.
func (db *DB) CreateAPIKey(ctx context.Context, k auth.APIKey, key idempotency.Key) (auth.APIKey, bool, error) {
	var out auth.APIKey
	created := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		orgName := resource.Org{Org: k.Org}.String()
		if err := lockVersion(ctx, tx, orgName, 0, `select version from organizations where id = $1 for share`, k.Org); err != nil {
			return err
		}
		name := resource.APIKey{Org: k.Org, Key: k.ID}.String()
		prior, err := claimRequest(ctx, tx, k.Org, "CreateApiKey", key, name)
		if err != nil {
			return err
		}
		if prior != uuid.Nil {
			out, err = scanKey(tx.QueryRow(ctx, `select `+keyColumns+` from api_keys where organization_id = $1 and id = $2`, k.Org, prior))
			return translate(err, resource.APIKey{Org: k.Org, Key: prior}.String())
		}
		out, err = scanKey(tx.QueryRow(ctx, `insert into api_keys (organization_id, id, display_name, role, key_prefix, key_hash, expire_time)
			values ($1, $2, $3, $4, $5, $6, $7) returning `+keyColumns,
			k.Org, k.ID, k.DisplayName, k.Role, k.KeyPrefix, k.Hash, k.ExpireTime))
		if err != nil {
			return err
		}
		created = true
		return appendAudit(ctx, tx, k.Org, name)
	})
	return out, created, err
}

// GetAPIKey implements auth.Store.
func (db *DB) GetAPIKey(ctx context.Context, org, id uuid.UUID) (auth.APIKey, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `select `+keyColumns+` from api_keys where organization_id = $1 and id = $2`, org, id))
	return k, translate(err, resource.APIKey{Org: org, Key: id}.String())
}

// ListAPIKeys implements auth.Store.
func (db *DB) ListAPIKeys(ctx context.Context, org uuid.UUID, p page.Request) ([]auth.APIKey, error) {
	rows, err := db.pool.Query(ctx, `select `+keyColumns+` from api_keys where organization_id = $1 and id > $2 order by id limit $3`,
		org, p.After, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.APIKey, error) { return scanKey(r) })
	return out, translate(err, "")
}

// UpdateAPIKey implements auth.Store.
func (db *DB) UpdateAPIKey(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*auth.APIKey) error) (auth.APIKey, error) {
	name := resource.APIKey{Org: org, Key: id}.String()
	var out auth.APIKey
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanKey(tx.QueryRow(ctx, `select `+keyColumns+` from api_keys where organization_id = $1 and id = $2 for update`, org, id))
		if err != nil {
			return translate(err, name)
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		out, err = scanKey(tx.QueryRow(ctx, `update api_keys set display_name = $3, update_time = now(), version = version + 1
			where organization_id = $1 and id = $2 returning `+keyColumns, org, id, cur.DisplayName))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, name)
	})
	return out, err
}

// DeleteAPIKey implements auth.Store.
func (db *DB) DeleteAPIKey(ctx context.Context, org, id uuid.UUID, version int64) error {
	name := resource.APIKey{Org: org, Key: id}.String()
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockVersion(ctx, tx, name, version, `select version from api_keys where organization_id = $1 and id = $2 for update`, org, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `delete from api_keys where organization_id = $1 and id = $2`, org, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, name)
	})
}

// LookupAPIKey implements auth.Store.
func (db *DB) LookupAPIKey(ctx context.Context, hash []byte) (auth.APIKey, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `select `+keyColumns+` from api_keys where key_hash = $1`, hash))
	return k, translate(err, "API key")
}
