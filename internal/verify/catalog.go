package verify

// The catalog a check judges with: the organization's effective catalog
// (the catalog dzconnect runs with, plus the organization's override). A
// change of either is picked up by the next check, which records the
// version it used (Check.CatalogVersion).

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
)

// Catalogs gives an organization's effective permission catalog.
// Implemented by organization.Catalogs.
type Catalogs interface {
	Base() *catalog.Catalog
	Effective(ctx context.Context, org uuid.UUID) (*catalog.Catalog, error)
}

// UseCatalogs makes checks judge with each organization's effective
// catalog; without it they judge with the embedded default.
func (s *Service) UseCatalogs(c Catalogs) { s.catalogs = c }

// catalogFor returns the catalog to judge org's integration with, and a
// note when the organization's override could not be read (the base
// catalog is used then).
func (s *Service) catalogFor(ctx context.Context, org uuid.UUID) (*catalog.Catalog, string) {
	if s.catalogs == nil {
		return catalog.Default(), ""
	}
	cat, err := s.catalogs.Effective(ctx, org)
	if err != nil {
		return s.catalogs.Base(), "the organization's catalog override could not be read (" + apperr.KindOf(err).String() + "): judged with the base catalog"
	}
	return cat, ""
}

// gateProbes makes a planned probe optional when the catalog does not
// require the permission it exercises: it then runs only when that
// permission is granted, and its failure is a warning. A probe whose
// permission the catalog does not list at all is optional too.
func gateProbes(p plan, cat *catalog.Catalog, kind integration.Kind) plan {
	out := p
	out.probes = make([]probePlan, len(p.probes))
	for i, pp := range p.probes {
		if pp.needs != "" {
			if r, ok := cat.Requirement(kind, resourceOf[pp.api], pp.needs); !ok || r != catalog.Required {
				pp.optional = true
			}
		}
		out.probes[i] = pp
	}
	return out
}
