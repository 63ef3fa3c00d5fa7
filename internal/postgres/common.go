package postgres

import (
	"bytes"
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

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

// errNoRows is what a statement that matched nothing reports.
var errNoRows = pgx.ErrNoRows

var (
	_ idempotency.Store = (*DB)(nil)
	_ audit.Appender    = (*DB)(nil)
)

// ClaimRequest implements idempotency.Store.
func (db *DB) ClaimRequest(ctx context.Context, tx uow.Tx, org uuid.UUID, method string, key idempotency.Key, resourceName string) (string, error) {
	if key.IsZero() {
		return "", nil
	}
	n, err := queries.InsertRequestKey(ctx, q(tx), query.InsertRequestKeyParams{
		OrganizationID: org, Method: method, RequestID: key.RequestID, RequestHash: key.Hash, ResourceName: resourceName,
	})
	if err != nil {
		return "", translate(err, "")
	}
	if n == 1 {
		return "", nil
	}
	prior, err := queries.GetRequestKey(ctx, q(tx), query.GetRequestKeyParams{OrganizationID: org, Method: method, RequestID: key.RequestID})
	if err != nil {
		return "", translate(err, "")
	}
	if !bytes.Equal(prior.RequestHash, key.Hash) {
		return "", apperr.Invalid("request_id", "was already used for a different request")
	}
	return prior.ResourceName, nil
}

// AppendAudit implements audit.Appender.
func (db *DB) AppendAudit(ctx context.Context, tx uow.Tx, org uuid.UUID, resource string) error {
	c := audit.CallFrom(ctx)
	return translate(queries.AppendAudit(ctx, q(tx), query.AppendAuditParams{
		OrganizationID: org, Actor: c.Actor, Method: c.Method, Resource: resource, RequestID: c.RequestID,
	}), "")
}

var _ secretgc.Queue = (*DB)(nil)

// QueueDestroy implements secretgc.Queue with the secret_destructions
// outbox, drained by the integration janitor.
//
// Deprecated: the service queues destroy_secret River jobs
// (jobs.SecretGC); rows still written here are moved into jobs at start-up
// (jobs.MoveSecretOutbox). It goes with the table once no store writes it.
func (db *DB) QueueDestroy(ctx context.Context, tx uow.Tx, org uuid.UUID, path string) error {
	return translate(queries.QueueSecretDestruction(ctx, q(tx), query.QueueSecretDestructionParams{OrganizationID: org, SecretPath: path}), "")
}
