package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ consent.Store = (*DB)(nil)

// RecordProvisionerPath implements consent.Store.
func (db *DB) RecordProvisionerPath(ctx context.Context, tx uow.Tx, org uuid.UUID, path string) (organization.Organization, error) {
	r, err := queries.RecordProvisionerPath(ctx, q(tx), query.RecordProvisionerPathParams{ID: org, Path: path})
	return orgFrom(r), translate(err, resource.Org{Org: org}.String())
}

// SetProvisioner implements consent.Store.
func (db *DB) SetProvisioner(ctx context.Context, tx uow.Tx, org, clientID uuid.UUID, version int64) (organization.Organization, error) {
	r, err := queries.SetOrganizationProvisioner(ctx, q(tx), query.SetOrganizationProvisionerParams{
		ID: org, ClientID: uuid.NullUUID{UUID: clientID, Valid: true}, SecretVersion: &version,
	})
	return orgFrom(r), translate(err, resource.Org{Org: org}.String())
}

// SetTenantConsentTime implements consent.Store.
func (db *DB) SetTenantConsentTime(ctx context.Context, tx uow.Tx, org, id uuid.UUID, at *time.Time) (tenant.Tenant, error) {
	r, err := queries.SetTenantConsentTime(ctx, q(tx), query.SetTenantConsentTimeParams{OrganizationID: org, ID: id, ConsentTime: at})
	if err != nil {
		return tenant.Tenant{}, translate(err, resource.Tenant{Org: org, Tenant: id}.String())
	}
	return tenantFrom(r)
}

// ListConsentedTenants implements consent.Store.
func (db *DB) ListConsentedTenants(ctx context.Context, tx uow.Tx, org uuid.UUID) ([]uuid.UUID, error) {
	ids, err := queries.ListConsentedTenants(ctx, q(tx), org)
	return ids, translate(err, "")
}

// DeleteUnusedConsentRequests implements consent.Store.
func (db *DB) DeleteUnusedConsentRequests(ctx context.Context, tx uow.Tx, org uuid.UUID) error {
	return translate(queries.DeleteUnusedConsentRequests(ctx, q(tx), org), "")
}

// DeleteExpiredConsentRequests implements consent.Store.
func (db *DB) DeleteExpiredConsentRequests(ctx context.Context, tx uow.Tx, org, tenantID uuid.UUID, before time.Time) error {
	return translate(queries.DeleteExpiredConsentRequests(ctx, q(tx), query.DeleteExpiredConsentRequestsParams{
		OrganizationID: org, TenantID: tenantID, Before: before,
	}), "")
}

// InsertConsentRequest implements consent.Store.
func (db *DB) InsertConsentRequest(ctx context.Context, tx uow.Tx, r consent.Request) error {
	var shared *string
	if r.SharedKind != "" {
		shared = &r.SharedKind
	}
	return translate(queries.InsertConsentRequest(ctx, q(tx), query.InsertConsentRequestParams{
		OrganizationID: r.Org, TenantID: r.Tenant, StateHash: r.StateHash, RedirectUri: r.RedirectURI,
		CreateTime: r.CreateTime, ExpireTime: r.ExpireTime, SharedKind: shared,
	}), "")
}

// GetConsentRequestForUpdate implements consent.Store.
func (db *DB) GetConsentRequestForUpdate(ctx context.Context, tx uow.Tx, org uuid.UUID, stateHash []byte) (consent.Request, error) {
	r, err := queries.GetConsentRequestForUpdate(ctx, q(tx), query.GetConsentRequestForUpdateParams{OrganizationID: org, StateHash: stateHash})
	if err != nil {
		return consent.Request{}, translate(err, "state")
	}
	out := consent.Request{Org: r.OrganizationID, Tenant: r.TenantID, StateHash: r.StateHash, RedirectURI: r.RedirectUri,
		CreateTime: r.CreateTime, ExpireTime: r.ExpireTime, UsedTime: r.UsedTime}
	if r.Scope != nil {
		out.Scope = *r.Scope
	}
	if r.Result != nil {
		out.Result = consent.Result(*r.Result)
	}
	if r.SharedKind != nil {
		out.SharedKind = *r.SharedKind
	}
	return out, nil
}

// RecordSharedConsent implements consent.Store (NotFound when the shared
// application is gone).
func (db *DB) RecordSharedConsent(ctx context.Context, tx uow.Tx, org, tenantID uuid.UUID, kind string, at time.Time) error {
	n, err := queries.RecordSharedConsent(ctx, q(tx), query.RecordSharedConsentParams{
		OrganizationID: org, TenantID: tenantID, Kind: kind, ConsentTime: at,
	})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, resource.Org{Org: org}.String()+"/sharedApplications/"+kind)
}

// GetSharedAppSecretRef implements consent.Store.
func (db *DB) GetSharedAppSecretRef(ctx context.Context, tx uow.Tx, org uuid.UUID, kind string) (uuid.UUID, string, int64, error) {
	r, err := queries.GetSharedApplication(ctx, q(tx), query.GetSharedApplicationParams{OrganizationID: org, Kind: kind})
	if err != nil {
		return uuid.Nil, "", 0, translate(err, resource.Org{Org: org}.String()+"/sharedApplications/"+kind)
	}
	return r.ClientID, r.SecretPath, r.SecretVersion, nil
}

// MarkConsentRequestUsed implements consent.Store.
func (db *DB) MarkConsentRequestUsed(ctx context.Context, tx uow.Tx, org uuid.UUID, stateHash []byte, result consent.Result, scope string) error {
	res := string(result)
	var sc *string
	if scope != "" {
		sc = &scope
	}
	return translate(queries.MarkConsentRequestUsed(ctx, q(tx), query.MarkConsentRequestUsedParams{
		OrganizationID: org, StateHash: stateHash, Result: &res, Scope: sc,
	}), "")
}

// LockTenant implements consent.Store and integration.Store: the tenant
// cannot be deleted until tx ends.
func (db *DB) LockTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	_, err := queries.LockTenantShared(ctx, q(tx), query.LockTenantSharedParams{OrganizationID: org, ID: id})
	return translate(err, resource.Tenant{Org: org, Tenant: id}.String())
}
