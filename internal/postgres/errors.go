package postgres

import (
	"context"
	"errors"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// constraintMessages turns constraint names into caller-facing messages.
var constraintMessages = map[string]struct {
	kind apperr.Kind
	msg  string
}{
	"tenants_organization_id_entra_tenant_id_uq":               {apperr.AlreadyExists, "a tenant with this Entra tenant ID already exists in the organization"},
	"integrations_organization_id_tenant_id_kind_client_id_uq": {apperr.AlreadyExists, "an integration of this kind with this client ID already exists in the tenant"},
	"integrations_provisioned_kind_uq":                         {apperr.AlreadyExists, "a provisioned integration of this kind already exists in the tenant"},
	"integrations_tenant_fk":                                   {apperr.FailedPrecondition, "the tenant still has integrations; delete them first"},
	"tenants_organization_id_fk":                               {apperr.FailedPrecondition, "the organization still has tenants; delete them first"},
	"api_keys_organization_id_fk":                              {apperr.NotFound, "organization not found"},
}

// translate maps a Postgres or pgx error to an apperr.Error. what names the
// resource for NotFound. Already classified errors pass through.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.From(err); ok {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.NotFoundf(what)
	}
	if errors.Is(err, context.Canceled) {
		return apperr.Wrap(err, apperr.Canceled, "request canceled")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(err, apperr.DeadlineExceeded, "deadline exceeded while talking to the database")
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if m, ok := constraintMessages[pg.ConstraintName]; ok {
			return apperr.Wrap(err, m.kind, "%s", m.msg).WithReason(pg.ConstraintName)
		}
		switch pg.Code {
		case "23505":
			return apperr.Wrap(err, apperr.AlreadyExists, "already exists (%s)", pg.ConstraintName)
		case "23503":
			return apperr.Wrap(err, apperr.FailedPrecondition, "a related resource is missing or still in use (%s)", pg.ConstraintName)
		case "23514", "22001", "22P02":
			return apperr.Wrap(err, apperr.InvalidArgument, "value rejected by the database (%s)", pg.ConstraintName)
		case "40001", "40P01":
			return apperr.Wrap(err, apperr.Aborted, "concurrent update; retry")
		case "57P01", "57P02", "57P03", "53300":
			return apperr.Wrap(err, apperr.Unavailable, "database unavailable")
		}
		return apperr.Wrap(err, apperr.Internal, "database error")
	}
	var netErr net.Error
	if errors.As(err, &netErr) || pgconn.SafeToRetry(err) {
		return apperr.Wrap(err, apperr.Unavailable, "database unavailable")
	}
	return apperr.Wrap(err, apperr.Internal, "database error")
}
