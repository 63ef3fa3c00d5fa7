package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ quota.Store = (*DB)(nil)

// CountForQuota implements quota.Store.
func (db *DB) CountForQuota(ctx context.Context, tx uow.Tx, org uuid.UUID, r quota.Resource) (int, error) {
	if err := queries.LockQuota(ctx, q(tx), "quota:"+org.String()+":"+string(r)); err != nil {
		return 0, translate(err, "")
	}
	var (
		n   int64
		err error
	)
	switch r {
	case quota.Tenants:
		n, err = queries.CountTenants(ctx, q(tx), org)
	case quota.Integrations:
		n, err = queries.CountIntegrations(ctx, q(tx), org)
	case quota.APIKeys:
		n, err = queries.CountAPIKeys(ctx, q(tx), org)
	case quota.ConsentLinks:
		n, err = queries.CountOutstandingConsentLinks(ctx, q(tx), org)
	default:
		return 0, fmt.Errorf("quota: unknown resource %q", r)
	}
	return int(n), translate(err, "")
}
