package postgres

import (
	"bytes"
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
)

// serviceScope is the organization_id of service-level idempotency keys.
var serviceScope = uuid.Nil

// claimRequest records a create's request_id within tx. It returns the ID of
// the resource created by an earlier call with the same request_id, or
// uuid.Nil when this call is the first. The same request_id with a
// different request is refused.
func claimRequest(ctx context.Context, tx pgx.Tx, org uuid.UUID, method string, key idempotency.Key, resourceName string) (uuid.UUID, error) {
	if key.IsZero() {
		return uuid.Nil, nil
	}
	tag, err := tx.Exec(ctx, `insert into idempotency_keys (organization_id, method, request_id, request_hash, resource_name)
		values ($1, $2, $3, $4, $5) on conflict on constraint idempotency_keys_pk do nothing`,
		org, method, key.RequestID, key.Hash, resourceName)
	if err != nil {
		return uuid.Nil, err
	}
	if tag.RowsAffected() == 1 {
		return uuid.Nil, nil
	}
	var hash []byte
	var name string
	err = tx.QueryRow(ctx, `select request_hash, resource_name from idempotency_keys
		where organization_id = $1 and method = $2 and request_id = $3`, org, method, key.RequestID).Scan(&hash, &name)
	if err != nil {
		return uuid.Nil, err
	}
	if !bytes.Equal(hash, key.Hash) {
		return uuid.Nil, apperr.Invalid("request_id", "was already used for a different request")
	}
	return uuid.MustParse(name[strings.LastIndexByte(name, '/')+1:]), nil
}

// lockVersion locks one row for update and checks its version against the
// caller's etag (0: no check). query must select the version column only.
func lockVersion(ctx context.Context, tx pgx.Tx, what string, version int64, query string, args ...any) error {
	var cur int64
	if err := tx.QueryRow(ctx, query, args...).Scan(&cur); err != nil {
		return translate(err, what)
	}
	if version != 0 && version != cur {
		return apperr.EtagMismatch()
	}
	return nil
}
