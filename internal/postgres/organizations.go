package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ organization.Store = (*DB)(nil)

func orgFrom(r query.Organization) organization.Organization {
	o := organization.Organization{ID: r.ID, DisplayName: r.DisplayName, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime,
		Version: r.Version, ProvisionerClientID: r.ProvisionerClientID.UUID,
		CredentialOverlap:          time.Duration(r.CredentialOverlapSeconds) * time.Second,
		CredentialRenewalThreshold: time.Duration(r.CredentialRenewalThresholdSeconds) * time.Second}
	if r.ProvisionerSecretPath != nil {
		o.ProvisionerSecretPath = *r.ProvisionerSecretPath
	}
	if r.ProvisionerSecretVersion != nil {
		o.ProvisionerSecretVersion = *r.ProvisionerSecretVersion
	}
	return o
}

// InsertOrganization implements organization.Store.
func (db *DB) InsertOrganization(ctx context.Context, tx uow.Tx, o organization.Organization) (organization.Organization, error) {
	r, err := queries.InsertOrganization(ctx, q(tx), query.InsertOrganizationParams{ID: o.ID, DisplayName: o.DisplayName})
	return orgFrom(r), translate(err, "")
}

// GetOrganization implements organization.Store.
func (db *DB) GetOrganization(ctx context.Context, tx uow.Tx, id uuid.UUID) (organization.Organization, error) {
	r, err := queries.GetOrganization(ctx, q(tx), id)
	return orgFrom(r), translate(err, resource.Org{Org: id}.String())
}

// GetOrganizationForUpdate implements organization.Store.
func (db *DB) GetOrganizationForUpdate(ctx context.Context, tx uow.Tx, id uuid.UUID) (organization.Organization, error) {
	r, err := queries.GetOrganizationForUpdate(ctx, q(tx), id)
	return orgFrom(r), translate(err, resource.Org{Org: id}.String())
}

// ListOrganizations implements organization.Store.
func (db *DB) ListOrganizations(ctx context.Context, tx uow.Tx, p page.Request) ([]organization.Organization, error) {
	rows, err := queries.ListOrganizations(ctx, q(tx), query.ListOrganizationsParams{After: p.After, Lim: int32(p.Size + 1)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]organization.Organization, 0, len(rows))
	for _, r := range rows {
		out = append(out, orgFrom(r))
	}
	return out, nil
}

// UpdateOrganization implements organization.Store.
func (db *DB) UpdateOrganization(ctx context.Context, tx uow.Tx, o organization.Organization) (organization.Organization, error) {
	r, err := queries.UpdateOrganization(ctx, q(tx), query.UpdateOrganizationParams{ID: o.ID, DisplayName: o.DisplayName,
		CredentialOverlapSeconds:          int64(o.CredentialOverlap / time.Second),
		CredentialRenewalThresholdSeconds: int64(o.CredentialRenewalThreshold / time.Second)})
	return orgFrom(r), translate(err, resource.Org{Org: o.ID}.String())
}

// DeleteOrganization implements organization.Store.
func (db *DB) DeleteOrganization(ctx context.Context, tx uow.Tx, id uuid.UUID) error {
	n, err := queries.DeleteOrganization(ctx, q(tx), id)
	if err == nil && n == 0 {
		err = errNoRows
	}
	if err != nil {
		return translate(err, resource.Org{Org: id}.String())
	}
	return translate(queries.DeleteOrganizationRequestKeys(ctx, q(tx), id), "")
}

// ListWebhookSecretPaths implements organization.Store.
func (db *DB) ListWebhookSecretPaths(ctx context.Context, tx uow.Tx, id uuid.UUID) ([]string, error) {
	paths, err := queries.ListOrganizationWebhookSecrets(ctx, q(tx), id)
	return paths, translate(err, "")
}
