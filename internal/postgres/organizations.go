package postgres

import (
	"context"
	"github.com/dropzoneai/dzconnect/internal/apperr"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

var _ organization.Store = (*DB)(nil)

const orgColumns = `id, display_name, create_time, update_time, version,
	provisioner_client_id, provisioner_secret_path, provisioner_secret_version`

func scanOrg(row pgx.Row) (organization.Organization, error) {
	var (
		o        organization.Organization
		clientID uuid.NullUUID
		path     *string
		version  *int64
	)
	err := row.Scan(&o.ID, &o.DisplayName, &o.CreateTime, &o.UpdateTime, &o.Version, &clientID, &path, &version)
	o.ProvisionerClientID = clientID.UUID
	if path != nil {
		o.ProvisionerSecretPath = *path
	}
	if version != nil {
		o.ProvisionerSecretVersion = *version
	}
	return o, err
}

// CreateOrganization implements organization.Store.
func (db *DB) CreateOrganization(ctx context.Context, o organization.Organization, key idempotency.Key) (organization.Organization, error) {
	var out organization.Organization
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		name := resource.Org{Org: o.ID}.String()
		prior, err := claimRequest(ctx, tx, serviceScope, "CreateOrganization", key, name)
		if err != nil {
			return err
		}
		if prior != uuid.Nil {
			out, err = scanOrg(tx.QueryRow(ctx, `select `+orgColumns+` from organizations where id = $1`, prior))
			return translate(err, resource.Org{Org: prior}.String())
		}
		out, err = scanOrg(tx.QueryRow(ctx, `insert into organizations (id, display_name) values ($1, $2)
			returning `+orgColumns, o.ID, o.DisplayName))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, o.ID, name)
	})
	return out, err
}

// GetOrganization implements organization.Store.
func (db *DB) GetOrganization(ctx context.Context, id uuid.UUID) (organization.Organization, error) {
	o, err := scanOrg(db.pool.QueryRow(ctx, `select `+orgColumns+` from organizations where id = $1`, id))
	return o, translate(err, resource.Org{Org: id}.String())
}

// ListOrganizations implements organization.Store.
func (db *DB) ListOrganizations(ctx context.Context, p page.Request) ([]organization.Organization, error) {
	rows, err := db.pool.Query(ctx, `select `+orgColumns+` from organizations where id > $1 order by id limit $2`, p.After, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (organization.Organization, error) { return scanOrg(r) })
	return out, translate(err, "")
}

// UpdateOrganization implements organization.Store.
func (db *DB) UpdateOrganization(ctx context.Context, id uuid.UUID, version int64, mutate func(*organization.Organization) error) (organization.Organization, error) {
	name := resource.Org{Org: id}.String()
	var out organization.Organization
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanOrg(tx.QueryRow(ctx, `select `+orgColumns+` from organizations where id = $1 for update`, id))
		if err != nil {
			return translate(err, name)
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		out, err = scanOrg(tx.QueryRow(ctx, `update organizations set display_name = $2, update_time = now(), version = version + 1
			where id = $1 returning `+orgColumns, id, cur.DisplayName))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, id, name)
	})
	return out, err
}

// DeleteOrganization implements organization.Store. Its API keys and
// request IDs and webhooks go with it, its provisioner and webhook signing
// secrets are queued for destruction;
// tenants must be deleted first.
func (db *DB) DeleteOrganization(ctx context.Context, id uuid.UUID, version int64) error {
	name := resource.Org{Org: id}.String()
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockVersion(ctx, tx, name, version, `select version from organizations where id = $1 for update`, id); err != nil {
			return err
		}
		// The provisioner secret's destruction is queued in this transaction
		// (outbox; the integration janitor drains it).
		if _, err := tx.Exec(ctx, `insert into secret_destructions (organization_id, secret_path)
			select id, provisioner_secret_path from organizations where id = $1 and provisioner_secret_path is not null
			union all
			select organization_id, secret_path from webhooks where organization_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `delete from organizations where id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `delete from idempotency_keys where organization_id = $1`, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, id, name)
	})
}
