package organization

// An organization's permission catalog: the catalog dzconnect runs with
// (the embedded default or --catalog-file) and the organization's
// override of required and optional on top (the PermissionCatalogOverride
// singleton, organizations/{o}/permissionCatalogOverride). Checks judge
// with the effective catalog and record its version; provisioning grants
// what it lists; a change is picked up by each integration's next check.

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// CatalogOverride is an organization's override of the catalog's
// requirements. Revision counts its updates (0: never written); it is the
// etag and the "+org.N" of the effective catalog's version.
type CatalogOverride struct {
	Org        uuid.UUID
	Entries    []catalog.Override
	Revision   int64
	UpdateTime time.Time // zero when never written
}

// CatalogOverrideName is the override's resource name.
func CatalogOverrideName(org uuid.UUID) string {
	return resource.Org{Org: org}.String() + "/permissionCatalogOverride"
}

// CatalogStore reads and writes catalog overrides; NotFound when an
// organization has none.
type CatalogStore interface {
	GetCatalogOverride(ctx context.Context, tx uow.Tx, org uuid.UUID) (CatalogOverride, error)
	// PutCatalogOverride writes o at o.Revision, only if the stored one is
	// at o.Revision-1 (Aborted otherwise).
	PutCatalogOverride(ctx context.Context, tx uow.Tx, o CatalogOverride) (CatalogOverride, error)
}

// Catalogs gives organizations their effective catalog and runs the
// override use cases.
type Catalogs struct {
	tx    uow.Runner
	base  *catalog.Catalog
	store CatalogStore
	orgs  Store
	audit audit.Appender
}

// NewCatalogs returns Catalogs over base (catalog.Default() or a
// --catalog-file).
func NewCatalogs(tx uow.Runner, base *catalog.Catalog, store CatalogStore, orgs Store, a audit.Appender) *Catalogs {
	return &Catalogs{tx: tx, base: base, store: store, orgs: orgs, audit: a}
}

// Base returns the catalog without any organization's override.
func (c *Catalogs) Base() *catalog.Catalog { return c.base }

// Effective returns org's catalog: the base with its override applied.
func (c *Catalogs) Effective(ctx context.Context, org uuid.UUID) (*catalog.Catalog, error) {
	o, err := c.override(ctx, c.tx.Conn(), org)
	if err != nil {
		return nil, err
	}
	return c.base.Apply(o.Entries, o.Revision), nil
}

// GetOverride returns org's override (empty, revision 0, when never
// written); NotFound when the organization does not exist.
func (c *Catalogs) GetOverride(ctx context.Context, org uuid.UUID) (CatalogOverride, error) {
	if _, err := c.orgs.GetOrganization(ctx, c.tx.Conn(), org); err != nil {
		return CatalogOverride{}, err
	}
	return c.override(ctx, c.tx.Conn(), org)
}

// UpdateOverride replaces org's override entries, after checking the
// caller's etag (revision; -1 skips the check): each entry must name one
// catalog entry, once, and set required or optional (InvalidArgument
// naming permission_catalog_override.entries[i].<field>, nothing
// written). Writes under the organization's row lock, with an audit event.
func (c *Catalogs) UpdateOverride(ctx context.Context, org uuid.UUID, revision int64, entries []catalog.Override) (CatalogOverride, error) {
	var v apperr.Violations
	if v.CheckLen("permission_catalog_override.entries", len(entries)) {
		for _, e := range c.base.CheckOverrides(entries) {
			v.Add(fmt.Sprintf("permission_catalog_override.entries[%d].%s", e.Index, e.Field), "%s", e.Message)
		}
	}
	if len(entries) > catalog.MaxOverrides {
		v.Add("permission_catalog_override.entries", "at most %d entries", catalog.MaxOverrides)
	}
	if err := v.Err(); err != nil {
		return CatalogOverride{}, err
	}
	var out CatalogOverride
	err := c.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if _, err := c.orgs.GetOrganizationForUpdate(ctx, tx, org); err != nil {
			return err
		}
		cur, err := c.override(ctx, tx, org)
		if err != nil {
			return err
		}
		if revision >= 0 && revision != cur.Revision {
			return apperr.EtagMismatch()
		}
		if entries == nil {
			entries = []catalog.Override{}
		}
		if out, err = c.store.PutCatalogOverride(ctx, tx, CatalogOverride{Org: org, Entries: entries, Revision: cur.Revision + 1}); err != nil {
			return err
		}
		return c.audit.AppendAudit(ctx, tx, org, CatalogOverrideName(org))
	})
	return out, err
}

func (c *Catalogs) override(ctx context.Context, tx uow.Tx, org uuid.UUID) (CatalogOverride, error) {
	o, err := c.store.GetCatalogOverride(ctx, tx, org)
	if apperr.Is(err, apperr.NotFound) {
		return CatalogOverride{Org: org, Entries: []catalog.Override{}}, nil
	}
	return o, err
}
