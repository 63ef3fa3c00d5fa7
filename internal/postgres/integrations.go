package postgres

import (
	"context"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

var _ integration.Store = (*DB)(nil)

const integrationColumns = `organization_id, tenant_id, id, kind, display_name, features, management_mode, client_id,
	application_object_id, service_principal_object_id,
	sentinel_subscription_id, sentinel_resource_group, sentinel_workspace_name, sentinel_workspace_id,
	secret_path, secret_version, credential_key_id, credential_hint, credential_create_time, credential_expire_time,
	state, last_check_time, state_change_time, expiry_warned_time, pending, create_time, update_time, version`

// integrationRow receives one row of integrationColumns.
type integrationRow struct {
	i                   integration.Integration
	features            []string
	subID, workspaceID  uuid.NullUUID
	resourceGroup, name *string
	hint                *string
}

// dest lists the scan destinations, in integrationColumns order.
func (x *integrationRow) dest() []any {
	i := &x.i
	return []any{&i.Org, &i.Tenant, &i.ID, &i.Kind, &i.DisplayName, &x.features, &i.Mode, &i.ClientID,
		&i.AppObjectID, &i.ServicePrincipal,
		&x.subID, &x.resourceGroup, &x.name, &x.workspaceID,
		&i.SecretPath, &i.Credential.Version, &i.Credential.KeyID, &x.hint, &i.Credential.CreateTime, &i.Credential.ExpireTime,
		&i.State, &i.LastCheckTime, &i.StateChangeTime, &i.ExpiryWarnTime, &i.Pending, &i.CreateTime, &i.UpdateTime, &i.Version}
}

// value assembles the scanned integration.
func (x *integrationRow) value() integration.Integration {
	i := x.i
	for _, f := range x.features {
		i.Features = append(i.Features, integration.Feature(f))
	}
	if x.subID.Valid {
		i.Sentinel = &integration.Sentinel{SubscriptionID: x.subID.UUID, WorkspaceID: x.workspaceID.UUID}
		if x.resourceGroup != nil {
			i.Sentinel.ResourceGroup = *x.resourceGroup
		}
		if x.name != nil {
			i.Sentinel.WorkspaceName = *x.name
		}
	}
	if x.hint != nil {
		i.Credential.Hint = *x.hint
	}
	return i
}

func scanIntegration(row pgx.Row) (integration.Integration, error) {
	var x integrationRow
	if err := row.Scan(x.dest()...); err != nil {
		return x.i, err
	}
	return x.value(), nil
}

// sentinelArgs flattens the optional Sentinel settings into columns.
func sentinelArgs(s *integration.Sentinel) (sub, rg, name, ws any) {
	if s == nil {
		return nil, nil, nil, nil
	}
	return s.SubscriptionID, s.ResourceGroup, s.WorkspaceName, s.WorkspaceID
}

func featureStrings(fs []integration.Feature) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, string(f))
	}
	return out
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// BeginCreateIntegration implements integration.Store.
func (db *DB) BeginCreateIntegration(ctx context.Context, in integration.Integration, key idempotency.Key) (integration.Integration, bool, error) {
	var (
		out    integration.Integration
		replay bool
	)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tenantName := resource.Tenant{Org: in.Org, Tenant: in.Tenant}.String()
		if err := lockVersion(ctx, tx, tenantName, 0, `select version from tenants where organization_id = $1 and id = $2 for share`, in.Org, in.Tenant); err != nil {
			return err
		}
		name := resource.Integration{Org: in.Org, Tenant: in.Tenant, Integration: in.ID}.String()
		prior, err := claimRequest(ctx, tx, in.Org, "CreateIntegration", key, name)
		if err != nil {
			return err
		}
		if prior != uuid.Nil {
			replay = true
			out, err = scanIntegration(tx.QueryRow(ctx, `select `+integrationColumns+` from integrations
				where organization_id = $1 and id = $2`, in.Org, prior))
			return translate(err, resource.Integration{Org: in.Org, Tenant: in.Tenant, Integration: prior}.String())
		}
		sub, rg, ws, wsID := sentinelArgs(in.Sentinel)
		out, err = scanIntegration(tx.QueryRow(ctx, `insert into integrations (organization_id, tenant_id, id, kind, display_name, features,
				management_mode, client_id, application_object_id, service_principal_object_id,
				sentinel_subscription_id, sentinel_resource_group, sentinel_workspace_name, sentinel_workspace_id,
				secret_path, credential_key_id, credential_hint, credential_expire_time, state, pending)
			values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, true)
			returning `+integrationColumns,
			in.Org, in.Tenant, in.ID, in.Kind, in.DisplayName, featureStrings(in.Features),
			in.Mode, in.ClientID, in.AppObjectID, in.ServicePrincipal,
			sub, rg, ws, wsID,
			in.SecretPath, in.Credential.KeyID, nullString(in.Credential.Hint), in.Credential.ExpireTime, in.State))
		return err
	})
	return out, replay, err
}

// FinishCreateIntegration implements integration.Store.
func (db *DB) FinishCreateIntegration(ctx context.Context, org, id uuid.UUID, secretVersion int64) (integration.Integration, error) {
	var out integration.Integration
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanIntegration(tx.QueryRow(ctx, `update integrations
			set pending = false, secret_version = $3, credential_create_time = now(), update_time = now()
			where organization_id = $1 and id = $2 and pending
			returning `+integrationColumns, org, id, secretVersion))
		if err != nil {
			return translate(err, "integration")
		}
		return appendAudit(ctx, tx, org, resource.Integration{Org: org, Tenant: out.Tenant, Integration: id}.String())
	})
	return out, err
}

// GetIntegration implements integration.Store. Pending rows are invisible.
func (db *DB) GetIntegration(ctx context.Context, org, id uuid.UUID) (integration.Integration, error) {
	i, err := scanIntegration(db.pool.QueryRow(ctx, `select `+integrationColumns+` from integrations
		where organization_id = $1 and id = $2 and not pending`, org, id))
	return i, translate(err, "integration "+id.String())
}

// ListIntegrations implements integration.Store.
func (db *DB) ListIntegrations(ctx context.Context, org uuid.UUID, f integration.Filter, p page.Request) ([]integration.Integration, error) {
	rows, err := db.pool.Query(ctx, `select `+integrationColumns+` from integrations
		where organization_id = $1 and not pending and id > $2
		  and ($3::uuid is null or tenant_id = $3)
		  and ($4::text = '' or kind = $4)
		  and ($5::text = '' or state = $5)
		  and ($6::timestamptz is null or credential_expire_time < $6)
		order by id limit $7`,
		org, p.After, uuid.NullUUID{UUID: f.Tenant, Valid: f.Tenant != uuid.Nil}, string(f.Kind), string(f.State),
		nullTime(f.ExpireBefore), p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (integration.Integration, error) { return scanIntegration(r) })
	return out, translate(err, "")
}

// UpdateIntegration implements integration.Store.
func (db *DB) UpdateIntegration(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*integration.Integration) error) (integration.Integration, error) {
	var out integration.Integration
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanIntegration(tx.QueryRow(ctx, `select `+integrationColumns+` from integrations
			where organization_id = $1 and id = $2 and not pending for update`, org, id))
		if err != nil {
			return translate(err, "integration "+id.String())
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		sub, rg, ws, wsID := sentinelArgs(cur.Sentinel)
		out, err = scanIntegration(tx.QueryRow(ctx, `update integrations set
				display_name = $3, features = $4, application_object_id = $5, service_principal_object_id = $6,
				sentinel_subscription_id = $7, sentinel_resource_group = $8, sentinel_workspace_name = $9, sentinel_workspace_id = $10,
				secret_version = $11, credential_key_id = $12, credential_hint = $13, credential_create_time = $14,
				credential_expire_time = $15, state = $16, last_check_time = $17, expiry_warned_time = $18,
				update_time = now(), version = version + 1
			where organization_id = $1 and id = $2 returning `+integrationColumns,
			org, id, cur.DisplayName, featureStrings(cur.Features), cur.AppObjectID, cur.ServicePrincipal,
			sub, rg, ws, wsID,
			cur.Credential.Version, cur.Credential.KeyID, nullString(cur.Credential.Hint), cur.Credential.CreateTime,
			cur.Credential.ExpireTime, cur.State, cur.LastCheckTime, cur.ExpiryWarnTime))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, resource.Integration{Org: org, Tenant: cur.Tenant, Integration: id}.String())
	})
	return out, err
}

// DeleteIntegration implements integration.Store.
func (db *DB) DeleteIntegration(ctx context.Context, org, id uuid.UUID, version int64) (integration.SecretDestruction, error) {
	var d integration.SecretDestruction
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var (
			cur    int64
			tenant uuid.UUID
			path   string
		)
		err := tx.QueryRow(ctx, `select version, tenant_id, secret_path from integrations
			where organization_id = $1 and id = $2 and not pending for update`, org, id).Scan(&cur, &tenant, &path)
		if err != nil {
			return translate(err, "integration "+id.String())
		}
		if version != 0 && version != cur {
			return apperr.EtagMismatch()
		}
		if _, err := tx.Exec(ctx, `delete from integrations where organization_id = $1 and id = $2`, org, id); err != nil {
			return err
		}
		d = integration.SecretDestruction{Org: org, Path: path}
		if err := tx.QueryRow(ctx, `insert into secret_destructions (organization_id, secret_path) values ($1, $2) returning id`,
			org, path).Scan(&d.ID); err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, resource.Integration{Org: org, Tenant: tenant, Integration: id}.String())
	})
	return d, err
}

// ReapPendingIntegrations implements integration.Store. It runs for every
// organization: it is background work, not an API query.
func (db *DB) ReapPendingIntegrations(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `delete from integrations where pending and create_time < $1
			returning organization_id, tenant_id, id, secret_path`, cutoff)
		if err != nil {
			return err
		}
		type reaped struct {
			org, tenant, id uuid.UUID
			path            string
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reaped, error) {
			var x reaped
			return x, r.Scan(&x.org, &x.tenant, &x.id, &x.path)
		})
		if err != nil {
			return err
		}
		for _, x := range list {
			name := resource.Integration{Org: x.org, Tenant: x.tenant, Integration: x.id}.String()
			if _, err := tx.Exec(ctx, `delete from idempotency_keys where organization_id = $1 and resource_name = $2`, x.org, name); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `insert into secret_destructions (organization_id, secret_path) values ($1, $2)`, x.org, x.path); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	return n, err
}

// ClaimSecretDestructions implements integration.Store. Due entries are
// leased in a short transaction (SKIP LOCKED: replicas share them), fn runs
// outside any transaction, and each entry is then removed or rescheduled
// with backoff.
func (db *DB) ClaimSecretDestructions(ctx context.Context, limit int, fn func(integration.SecretDestruction) error) (int, int, error) {
	rows, err := db.pool.Query(ctx, `update secret_destructions set next_attempt_time = now() + interval '5 minutes'
		where id in (select id from secret_destructions where next_attempt_time <= now()
			order by next_attempt_time, id limit $1 for update skip locked)
		returning id, organization_id, secret_path, attempts`, limit)
	if err != nil {
		return 0, 0, translate(err, "")
	}
	type claimed struct {
		d        integration.SecretDestruction
		attempts int
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		return c, r.Scan(&c.d.ID, &c.d.Org, &c.d.Path, &c.attempts)
	})
	if err != nil {
		return 0, 0, translate(err, "")
	}
	done := 0
	for _, c := range list {
		if ferr := fn(c.d); ferr != nil {
			backoff := time.Minute << min(c.attempts, 6)
			if _, err := db.pool.Exec(ctx, `update secret_destructions set attempts = attempts + 1, last_error = $2,
				next_attempt_time = now() + $3 * interval '1 second' where id = $1`,
				c.d.ID, truncate(ferr.Error(), 500), min(backoff, time.Hour).Seconds()); err != nil {
				return len(list), done, translate(err, "")
			}
			continue
		}
		if _, err := db.pool.Exec(ctx, `delete from secret_destructions where id = $1`, c.d.ID); err != nil {
			return len(list), done, translate(err, "")
		}
		done++
	}
	return len(list), done, nil
}

// QueueSecretDestruction implements integration.Store.
func (db *DB) QueueSecretDestruction(ctx context.Context, org uuid.UUID, path string) error {
	_, err := db.pool.Exec(ctx, `insert into secret_destructions (organization_id, secret_path) values ($1, $2)`, org, path)
	return translate(err, "")
}

// DoneSecretDestruction implements integration.Store.
func (db *DB) DoneSecretDestruction(ctx context.Context, id int64) error {
	_, err := db.pool.Exec(ctx, `delete from secret_destructions where id = $1`, id)
	return translate(err, "")
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ListDueIntegrationRefs implements jobs.Source: visible integrations of
// every organization last checked before dueBefore (or never), in ID order
// (background work, not an API query).
func (db *DB) ListDueIntegrationRefs(ctx context.Context, dueBefore time.Time, after uuid.UUID, limit int) ([]jobs.Ref, error) {
	rows, err := db.pool.Query(ctx, `select organization_id, tenant_id, id from integrations
		where not pending and id > $1 and (last_check_time is null or last_check_time < $2)
		order by id limit $3`, after, dueBefore, limit)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobs.Ref, error) {
		var x jobs.Ref
		return x, r.Scan(&x.Org, &x.Tenant, &x.ID)
	})
	return out, translate(err, "")
}
