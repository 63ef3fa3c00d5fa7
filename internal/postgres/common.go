package postgres

import (
	"bytes"
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

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

// truncate cuts s to at most n bytes (error texts kept in a bounded column).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
