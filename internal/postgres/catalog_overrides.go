package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ organization.CatalogStore = (*DB)(nil)

// GetCatalogOverride implements organization.CatalogStore.
func (db *DB) GetCatalogOverride(ctx context.Context, tx uow.Tx, org uuid.UUID) (organization.CatalogOverride, error) {
	r, err := queries.GetPermissionCatalogOverride(ctx, q(tx), org)
	if err != nil {
		return organization.CatalogOverride{}, translate(err, organization.CatalogOverrideName(org))
	}
	return catalogOverrideFrom(r)
}

// PutCatalogOverride implements organization.CatalogStore.
func (db *DB) PutCatalogOverride(ctx context.Context, tx uow.Tx, o organization.CatalogOverride) (organization.CatalogOverride, error) {
	b, err := json.Marshal(o.Entries)
	if err != nil {
		return organization.CatalogOverride{}, fmt.Errorf("encoding catalog override: %w", err)
	}
	r, err := queries.PutPermissionCatalogOverride(ctx, q(tx), query.PutPermissionCatalogOverrideParams{
		OrganizationID: o.Org, Entries: b, Revision: o.Revision})
	if err != nil {
		if apperr.Is(translate(err, ""), apperr.NotFound) {
			return organization.CatalogOverride{}, apperr.EtagMismatch()
		}
		return organization.CatalogOverride{}, translate(err, organization.CatalogOverrideName(o.Org))
	}
	return catalogOverrideFrom(r)
}

func catalogOverrideFrom(r query.PermissionCatalogOverride) (organization.CatalogOverride, error) {
	o := organization.CatalogOverride{Org: r.OrganizationID, Revision: r.Revision, UpdateTime: r.UpdateTime}
	if err := json.Unmarshal(r.Entries, &o.Entries); err != nil {
		return o, fmt.Errorf("decoding catalog override: %w", err)
	}
	if o.Entries == nil {
		o.Entries = []catalog.Override{}
	}
	return o, nil
}

// nilIfEmpty maps "" to a null column.
func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
