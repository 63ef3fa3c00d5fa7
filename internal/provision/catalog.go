package provision

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/catalog"
)

// Catalogs gives an organization's effective permission catalog: what
// provisioning grants (every application permission it lists for the
// integration's kind and features, required and optional). Implemented by
// organization.Catalogs.
type Catalogs interface {
	Effective(ctx context.Context, org uuid.UUID) (*catalog.Catalog, error)
}

// catalog returns org's effective catalog (the embedded default without
// Deps.Catalogs).
func (s *Service) catalog(ctx context.Context, org uuid.UUID) (*catalog.Catalog, error) {
	if s.d.Catalogs == nil {
		return catalog.Default(), nil
	}
	return s.d.Catalogs.Effective(ctx, org)
}

// baseCatalog is the catalog without any organization's override: its
// entries (which permissions and roles exist for a kind and feature) are
// every organization's, an override only changes their requirement. A
// SkipIf (no I/O) decides from it.
func (s *Service) baseCatalog() *catalog.Catalog {
	if b, ok := s.d.Catalogs.(interface{ Base() *catalog.Catalog }); ok {
		return b.Base()
	}
	return catalog.Default()
}
