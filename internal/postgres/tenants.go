package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ tenant.Store = (*DB)(nil)

// tenantFrom converts a row.
func tenantFrom(r query.Tenant) (tenant.Tenant, error) {
	t := tenant.Tenant{
		Org: r.OrganizationID, ID: r.ID, EntraTenantID: r.EntraTenantID, Cloud: tenant.Cloud(r.Cloud),
		DisplayName: r.DisplayName, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime, Version: r.Version,
		ProvisionerConsentTime: r.ProvisionerConsentTime,
	}
	if err := json.Unmarshal(r.Labels, &t.Labels); err != nil {
		return t, fmt.Errorf("decoding tenant labels: %w", err)
	}
	return t, nil
}

func labelsJSON(m map[string]string) json.RawMessage {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return b
}

// LockOrganization implements tenant.Store.
func (db *DB) LockOrganization(ctx context.Context, tx uow.Tx, org uuid.UUID) error {
	_, err := queries.LockOrganizationShared(ctx, q(tx), org)
	return translate(err, resource.Org{Org: org}.String())
}

// InsertTenant implements tenant.Store.
func (db *DB) InsertTenant(ctx context.Context, tx uow.Tx, t tenant.Tenant) (tenant.Tenant, error) {
	r, err := queries.InsertTenant(ctx, q(tx), query.InsertTenantParams{
		OrganizationID: t.Org, ID: t.ID, EntraTenantID: t.EntraTenantID, Cloud: string(t.Cloud),
		DisplayName: t.DisplayName, Labels: labelsJSON(t.Labels),
	})
	if err != nil {
		return tenant.Tenant{}, translate(err, "")
	}
	return tenantFrom(r)
}

// GetTenant implements tenant.Store.
func (db *DB) GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error) {
	r, err := queries.GetTenant(ctx, q(tx), query.GetTenantParams{OrganizationID: org, ID: id})
	if err != nil {
		return tenant.Tenant{}, translate(err, resource.Tenant{Org: org, Tenant: id}.String())
	}
	return tenantFrom(r)
}

// GetTenantForUpdate implements tenant.Store.
func (db *DB) GetTenantForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error) {
	r, err := queries.GetTenantForUpdate(ctx, q(tx), query.GetTenantForUpdateParams{OrganizationID: org, ID: id})
	if err != nil {
		return tenant.Tenant{}, translate(err, resource.Tenant{Org: org, Tenant: id}.String())
	}
	return tenantFrom(r)
}

// ListTenants implements tenant.Store.
func (db *DB) ListTenants(ctx context.Context, tx uow.Tx, org uuid.UUID, p page.Request) ([]tenant.Tenant, error) {
	rows, err := queries.ListTenants(ctx, q(tx), query.ListTenantsParams{OrganizationID: org, After: p.After, Lim: int32(p.Size + 1)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]tenant.Tenant, 0, len(rows))
	for _, r := range rows {
		t, err := tenantFrom(r)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// UpdateTenant implements tenant.Store.
func (db *DB) UpdateTenant(ctx context.Context, tx uow.Tx, t tenant.Tenant) (tenant.Tenant, error) {
	r, err := queries.UpdateTenant(ctx, q(tx), query.UpdateTenantParams{
		OrganizationID: t.Org, ID: t.ID, DisplayName: t.DisplayName, Labels: labelsJSON(t.Labels),
	})
	if err != nil {
		return tenant.Tenant{}, translate(err, resource.Tenant{Org: t.Org, Tenant: t.ID}.String())
	}
	return tenantFrom(r)
}

// DeleteTenant implements tenant.Store.
func (db *DB) DeleteTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	n, err := queries.DeleteTenant(ctx, q(tx), query.DeleteTenantParams{OrganizationID: org, ID: id})
	if err == nil && n == 0 {
		return translate(errNoRows, resource.Tenant{Org: org, Tenant: id}.String())
	}
	return translate(err, "")
}
