package verify

// The catalog a check judges with: the organization's effective catalog
// (the catalog dzconnect runs with, plus the organization's override). A
// change of either is picked up by the next check, which records the
// version it used (Check.CatalogVersion).

import (
	"context"
	"sync"

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
// catalog is used then). rev is the override's revision read with the
// target (Target.CatalogRevision; nil: not read, read it now): 0 is no
// override (the base catalog, as Effective gives then); another one is
// kept by revision (catalogCache): read once per organization, replica
// and revision.
func (s *Service) catalogFor(ctx context.Context, org uuid.UUID, rev *int64) (*catalog.Catalog, string) {
	if s.catalogs == nil {
		return catalog.Default(), ""
	}
	if rev != nil && *rev == 0 {
		return s.catalogs.Base(), ""
	}
	if rev != nil {
		if cat, ok := s.catCache.get(org, *rev); ok {
			return cat, ""
		}
	}
	cat, err := s.catalogs.Effective(ctx, org)
	if err == nil && rev != nil {
		// Read after the target: at rev or newer.
		s.catCache.put(org, *rev, cat)
	}
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

// catalogCache keeps organizations' effective catalogs by the override
// revision their targets were read with (Target.CatalogRevision), so that
// a sweep reads an organization's override once per revision instead of
// once per check. A new revision (the override changed) is read again.
type catalogCache struct {
	mu sync.Mutex
	m  map[uuid.UUID]revCatalog
}

type revCatalog struct {
	rev int64
	cat *catalog.Catalog
}

// catalogCacheMax bounds the cache (organizations); when full it starts
// over.
const catalogCacheMax = 4096

func (c *catalogCache) get(org uuid.UUID, rev int64) (*catalog.Catalog, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[org]
	if !ok || e.rev != rev {
		return nil, false
	}
	return e.cat, true
}

func (c *catalogCache) put(org uuid.UUID, rev int64, cat *catalog.Catalog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= catalogCacheMax {
		c.m = map[uuid.UUID]revCatalog{}
	}
	c.m[org] = revCatalog{rev: rev, cat: cat}
}
