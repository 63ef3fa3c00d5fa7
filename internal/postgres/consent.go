package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

var _ consent.Store = (*DB)(nil)

// BeginSetProvisioner implements consent.Store. Recording the path is
// bookkeeping invisible through the API (no version bump, no audit event;
// FinishSetProvisioner appends the call's event).
func (db *DB) BeginSetProvisioner(ctx context.Context, org uuid.UUID, path string) (organization.Organization, error) {
	o, err := scanOrg(db.pool.QueryRow(ctx, `update organizations set provisioner_secret_path = coalesce(provisioner_secret_path, $2)
		where id = $1 returning `+orgColumns, org, path))
	return o, translate(err, resource.Org{Org: org}.String())
}

// FinishSetProvisioner implements consent.Store.
func (db *DB) FinishSetProvisioner(ctx context.Context, org, clientID uuid.UUID, version int64) (organization.Organization, error) {
	name := resource.Org{Org: org}.String()
	var out organization.Organization
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanOrg(tx.QueryRow(ctx, `select `+orgColumns+` from organizations where id = $1 for update`, org))
		if err != nil {
			return translate(err, name)
		}
		if cur.ProvisionerSecretVersion >= version {
			return apperr.New(apperr.Aborted,
				"a concurrent SetOrganizationProvisioner stored a newer provisioner secret; read the organization and retry if this one should win").
				WithReason("CONCURRENT_UPDATE")
		}
		out, err = scanOrg(tx.QueryRow(ctx, `update organizations set provisioner_client_id = $2, provisioner_secret_version = $3,
			update_time = now(), version = version + 1 where id = $1 returning `+orgColumns, org, clientID, version))
		if err != nil {
			return err
		}
		if cur.ProvisionerClientID != uuid.Nil && cur.ProvisionerClientID != clientID {
			if err := forgetConsents(ctx, tx, org); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, org, name)
	})
	return out, err
}

// CreateConsentRequest implements consent.Store.
func (db *DB) CreateConsentRequest(ctx context.Context, r consent.Request) error {
	name := resource.Tenant{Org: r.Org, Tenant: r.Tenant}.String()
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockVersion(ctx, tx, name, 0, `select version from tenants where organization_id = $1 and id = $2 for share`, r.Org, r.Tenant); err != nil {
			return err
		}
		// Housekeeping: links of this tenant that expired unused a day ago
		// are dropped (used ones stay as the consent history).
		if _, err := tx.Exec(ctx, `delete from admin_consent_requests where organization_id = $1 and tenant_id = $2
			and used_time is null and expire_time < now() - interval '1 day'`, r.Org, r.Tenant); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `insert into admin_consent_requests (organization_id, tenant_id, state_hash, redirect_uri, create_time, expire_time)
			values ($1, $2, $3, $4, $5, $6)`, r.Org, r.Tenant, r.StateHash, r.RedirectURI, r.CreateTime, r.ExpireTime); err != nil {
			return err
		}
		return appendAudit(ctx, tx, r.Org, name)
	})
}

// CompleteConsentRequest implements consent.Store.
func (db *DB) CompleteConsentRequest(ctx context.Context, org uuid.UUID, stateHash []byte,
	decide func(consent.Request, tenant.Tenant) (consent.Result, error)) (tenant.Tenant, error) {
	var out tenant.Tenant
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var (
			r      consent.Request
			result *string
		)
		err := tx.QueryRow(ctx, `select organization_id, tenant_id, state_hash, redirect_uri, create_time, expire_time, used_time, result
			from admin_consent_requests where organization_id = $1 and state_hash = $2 for update`, org, stateHash).
			Scan(&r.Org, &r.Tenant, &r.StateHash, &r.RedirectURI, &r.CreateTime, &r.ExpireTime, &r.UsedTime, &result)
		if err != nil {
			return translate(err, "state")
		}
		if result != nil {
			r.Result = consent.Result(*result)
		}
		name := resource.Tenant{Org: org, Tenant: r.Tenant}.String()
		t, err := scanTenant(tx.QueryRow(ctx, `select `+tenantColumns+` from tenants where organization_id = $1 and id = $2 for update`, org, r.Tenant))
		if err != nil {
			return translate(err, name)
		}
		res, err := decide(r, t)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update admin_consent_requests set used_time = now(), result = $3
			where organization_id = $1 and state_hash = $2`, org, stateHash, string(res)); err != nil {
			return err
		}
		out = t
		if res == consent.ResultConsented {
			out, err = scanTenant(tx.QueryRow(ctx, `update tenants set provisioner_consent_time = now(), update_time = now(), version = version + 1
				where organization_id = $1 and id = $2 returning `+tenantColumns, org, r.Tenant))
			if err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, org, name)
	})
	return out, err
}

// forgetConsents runs when the organization's provisioner becomes another
// application: the tenants' consents were given to the previous one, and
// the links still outstanding name it. Each cleared tenant gets its audit
// event.
func forgetConsents(ctx context.Context, tx pgx.Tx, org uuid.UUID) error {
	if _, err := tx.Exec(ctx, `delete from admin_consent_requests where organization_id = $1 and used_time is null`, org); err != nil {
		return err
	}
	c := audit.CallFrom(ctx)
	_, err := tx.Exec(ctx, `with cleared as (
			update tenants set provisioner_consent_time = null, update_time = now(), version = version + 1
			where organization_id = $1 and provisioner_consent_time is not null returning id)
		insert into audit_events (organization_id, actor, method, resource, request_id)
		select $1, $2, $3, 'organizations/' || $1::text || '/tenants/' || id::text, $4 from cleared`,
		org, c.Actor, c.Method, c.RequestID)
	return err
}
