package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ auth.Store = (*DB)(nil)

func keyFrom(r query.ApiKey) auth.APIKey {
	return auth.APIKey{Org: r.OrganizationID, ID: r.ID, DisplayName: r.DisplayName, Role: auth.Role(r.Role), KeyPrefix: r.KeyPrefix,
		Hash: r.KeyHash, ExpireTime: r.ExpireTime, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime, Version: r.Version}
}

// InsertAPIKey implements auth.Store.
func (db *DB) InsertAPIKey(ctx context.Context, tx uow.Tx, k auth.APIKey) (auth.APIKey, error) {
	r, err := queries.InsertAPIKey(ctx, q(tx), query.InsertAPIKeyParams{OrganizationID: k.Org, ID: k.ID, DisplayName: k.DisplayName,
		Role: string(k.Role), KeyPrefix: k.KeyPrefix, KeyHash: k.Hash, ExpireTime: k.ExpireTime})
	return keyFrom(r), translate(err, "")
}

// GetAPIKey implements auth.Store.
func (db *DB) GetAPIKey(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (auth.APIKey, error) {
	r, err := queries.GetAPIKey(ctx, q(tx), query.GetAPIKeyParams{OrganizationID: org, ID: id})
	return keyFrom(r), translate(err, resource.APIKey{Org: org, Key: id}.String())
}

// GetAPIKeyForUpdate implements auth.Store.
func (db *DB) GetAPIKeyForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (auth.APIKey, error) {
	r, err := queries.GetAPIKeyForUpdate(ctx, q(tx), query.GetAPIKeyForUpdateParams{OrganizationID: org, ID: id})
	return keyFrom(r), translate(err, resource.APIKey{Org: org, Key: id}.String())
}

// ListAPIKeys implements auth.Store.
func (db *DB) ListAPIKeys(ctx context.Context, tx uow.Tx, org uuid.UUID, p page.Request) ([]auth.APIKey, error) {
	rows, err := queries.ListAPIKeys(ctx, q(tx), query.ListAPIKeysParams{OrganizationID: org, After: p.After, Lim: int32(p.Size + 1)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]auth.APIKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, keyFrom(r))
	}
	return out, nil
}

// UpdateAPIKey implements auth.Store.
func (db *DB) UpdateAPIKey(ctx context.Context, tx uow.Tx, k auth.APIKey) (auth.APIKey, error) {
	r, err := queries.UpdateAPIKey(ctx, q(tx), query.UpdateAPIKeyParams{OrganizationID: k.Org, ID: k.ID, DisplayName: k.DisplayName})
	return keyFrom(r), translate(err, resource.APIKey{Org: k.Org, Key: k.ID}.String())
}

// DeleteAPIKey implements auth.Store.
func (db *DB) DeleteAPIKey(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	n, err := queries.DeleteAPIKey(ctx, q(tx), query.DeleteAPIKeyParams{OrganizationID: org, ID: id})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, resource.APIKey{Org: org, Key: id}.String())
}

// LookupAPIKey implements auth.Store.
func (db *DB) LookupAPIKey(ctx context.Context, tx uow.Tx, hash []byte) (auth.APIKey, error) {
	r, err := queries.LookupAPIKey(ctx, q(tx), hash)
	return keyFrom(r), translate(err, "API key")
}
