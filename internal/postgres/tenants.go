package postgres

import (
	"context"
	"github.com/dropzoneai/dzconnect/internal/apperr"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

var _ tenant.Store = (*DB)(nil)

const tenantColumns = `organization_id, id, entra_tenant_id, cloud, display_name, labels, create_time, update_time, version,
	provisioner_consent_time`

// tenantDest lists the scan destinations, in tenantColumns order.
func tenantDest(t *tenant.Tenant) []any {
	return []any{&t.Org, &t.ID, &t.EntraTenantID, &t.Cloud, &t.DisplayName, &t.Labels, &t.CreateTime, &t.UpdateTime, &t.Version,
		&t.ProvisionerConsentTime}
}

func scanTenant(row pgx.Row) (tenant.Tenant, error) {
	var t tenant.Tenant
	err := row.Scan(tenantDest(&t)...)
	return t, err
}

// CreateTenant implements tenant.Store.
func (db *DB) CreateTenant(ctx context.Context, t tenant.Tenant, key idempotency.Key) (tenant.Tenant, error) {
	var out tenant.Tenant
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		orgName := resource.Org{Org: t.Org}.String()
		if err := lockVersion(ctx, tx, orgName, 0, `select version from organizations where id = $1 for share`, t.Org); err != nil {
			return err
		}
		name := resource.Tenant{Org: t.Org, Tenant: t.ID}.String()
		prior, err := claimRequest(ctx, tx, t.Org, "CreateTenant", key, name)
		if err != nil {
			return err
		}
		if prior != uuid.Nil {
			out, err = scanTenant(tx.QueryRow(ctx, `select `+tenantColumns+` from tenants where organization_id = $1 and id = $2`, t.Org, prior))
			return translate(err, resource.Tenant{Org: t.Org, Tenant: prior}.String())
		}
		out, err = scanTenant(tx.QueryRow(ctx, `insert into tenants (organization_id, id, entra_tenant_id, cloud, display_name, labels)
			values ($1, $2, $3, $4, $5, $6) returning `+tenantColumns,
			t.Org, t.ID, t.EntraTenantID, t.Cloud, t.DisplayName, nonNilLabels(t.Labels)))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, t.Org, name)
	})
	return out, err
}

func nonNilLabels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetTenant implements tenant.Store.
func (db *DB) GetTenant(ctx context.Context, org, id uuid.UUID) (tenant.Tenant, error) {
	t, err := scanTenant(db.pool.QueryRow(ctx, `select `+tenantColumns+` from tenants where organization_id = $1 and id = $2`, org, id))
	return t, translate(err, resource.Tenant{Org: org, Tenant: id}.String())
}

// ListTenants implements tenant.Store.
func (db *DB) ListTenants(ctx context.Context, org uuid.UUID, p page.Request) ([]tenant.Tenant, error) {
	rows, err := db.pool.Query(ctx, `select `+tenantColumns+` from tenants where organization_id = $1 and id > $2 order by id limit $3`,
		org, p.After, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenant.Tenant, error) { return scanTenant(r) })
	return out, translate(err, "")
}

// UpdateTenant implements tenant.Store.
func (db *DB) UpdateTenant(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*tenant.Tenant) error) (tenant.Tenant, error) {
	name := resource.Tenant{Org: org, Tenant: id}.String()
	var out tenant.Tenant
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanTenant(tx.QueryRow(ctx, `select `+tenantColumns+` from tenants where organization_id = $1 and id = $2 for update`, org, id))
		if err != nil {
			return translate(err, name)
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		out, err = scanTenant(tx.QueryRow(ctx, `update tenants set display_name = $3, labels = $4, update_time = now(), version = version + 1
			where organization_id = $1 and id = $2 returning `+tenantColumns, org, id, cur.DisplayName, nonNilLabels(cur.Labels)))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, name)
	})
	return out, err
}

// DeleteTenant implements tenant.Store.
func (db *DB) DeleteTenant(ctx context.Context, org, id uuid.UUID, version int64) error {
	name := resource.Tenant{Org: org, Tenant: id}.String()
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockVersion(ctx, tx, name, version, `select version from tenants where organization_id = $1 and id = $2 for update`, org, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `delete from tenants where organization_id = $1 and id = $2`, org, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, name)
	})
}
