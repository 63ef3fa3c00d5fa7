package handlers

import (
	"context"
	"strconv"
	"strings"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type catalogs struct {
	v1.UnimplementedCatalogServiceServer
	d Deps
}

var (
	permissionTypes = map[catalog.Type]v1.PermissionType{
		catalog.TypeApplication:   v1.PermissionType_PERMISSION_TYPE_APPLICATION,
		catalog.TypeAzureRole:     v1.PermissionType_PERMISSION_TYPE_AZURE_ROLE,
		catalog.TypeDirectoryRole: v1.PermissionType_PERMISSION_TYPE_DIRECTORY_ROLE,
	}
	requirements = map[catalog.Requirement]v1.Requirement{
		catalog.Required:    v1.Requirement_REQUIREMENT_REQUIRED,
		catalog.Optional:    v1.Requirement_REQUIREMENT_OPTIONAL,
		catalog.Alternative: v1.Requirement_REQUIREMENT_ALTERNATIVE,
	}
	requirementsFromProto = map[v1.Requirement]catalog.Requirement{
		v1.Requirement_REQUIREMENT_REQUIRED: catalog.Required,
		v1.Requirement_REQUIREMENT_OPTIONAL: catalog.Optional,
	}
)

const overrideSuffix = "/permissionCatalogOverride"

// parseOverrideName parses organizations/{organization}/permissionCatalogOverride.
func parseOverrideName(field, name string) (resource.Org, error) {
	org, ok := strings.CutSuffix(name, overrideSuffix)
	if !ok {
		return resource.Org{}, apperr.Invalid(field, "must be organizations/{organization}/permissionCatalogOverride")
	}
	return resource.ParseOrg(field, org)
}

func (h *catalogs) GetPermissionCatalog(ctx context.Context, req *v1.GetPermissionCatalogRequest) (*v1.GetPermissionCatalogResponse, error) {
	var v apperr.Violations
	var kind integration.Kind
	if req.GetKind() != v1.IntegrationKind_INTEGRATION_KIND_UNSPECIFIED {
		k, ok := kinds[req.GetKind()]
		v.Check(ok, "kind", "unknown integration kind")
		kind = k
	}
	var fs []integration.Feature
	if len(req.GetFeatures()) > 0 {
		v.Check(kind != "", "features", "needs kind")
		fs = checkFeatures(&v, "features", kind, req.GetFeatures())
	}
	var org resource.Org
	if req.GetOrganization() != "" {
		o, err := resource.ParseOrg("organization", req.GetOrganization())
		if err != nil {
			return nil, err
		}
		org = o
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	cat := h.d.Catalogs.Base()
	resp := &v1.GetPermissionCatalogResponse{BaseVersion: cat.Version()}
	if req.GetOrganization() != "" {
		// The method admits any caller; an organization's catalog only its
		// viewers (another organization's is NotFound, as for every
		// resource).
		p, _ := auth.PrincipalFrom(ctx)
		if err := auth.Authorize(p, auth.Rule{Scope: auth.ScopeOrganization, Role: auth.RoleViewer},
			auth.Target{Field: "organization", Name: req.GetOrganization()}); err != nil {
			return nil, err
		}
		o, err := h.d.Catalogs.GetOverride(ctx, org.Org)
		if err != nil {
			return nil, err
		}
		cat = cat.Apply(o.Entries, o.Revision)
		resp.OverrideRevision = o.Revision
	}
	resp.Version = cat.Version()
	entries := cat.AllFeatures(kind) // no features asked: every feature's (browsing)
	if len(fs) > 0 {
		entries = cat.For(kind, fs)
	}
	for _, e := range entries {
		resp.Permissions = append(resp.Permissions, &v1.Permission{
			Kind:                kindToProto[e.Kind],
			Feature:             featureToProto[e.Feature],
			Type:                permissionTypes[e.Type],
			ResourceAppId:       e.ResourceAppID,
			ResourceDisplayName: e.ResourceName,
			Value:               e.Value,
			Id:                  e.ID,
			Requirement:         requirements[e.Requirement],
			TokenScope:          e.TokenScope,
			Note:                e.Note + sourceNote(e.Source),
		})
	}
	return resp, nil
}

// sourceNote cites an entry's source in its note.
func sourceNote(src string) string {
	if src == "" {
		return ""
	}
	return " Source: " + src
}

func overrideToProto(o organization.CatalogOverride) *v1.PermissionCatalogOverride {
	out := &v1.PermissionCatalogOverride{Name: organization.CatalogOverrideName(o.Org), Revision: o.Revision,
		Etag: strconv.FormatInt(o.Revision, 10), Entries: []*v1.PermissionRequirementOverride{}}
	if !o.UpdateTime.IsZero() {
		out.UpdateTime = ts(o.UpdateTime)
	}
	for _, e := range o.Entries {
		out.Entries = append(out.Entries, &v1.PermissionRequirementOverride{Kind: kindToProto[e.Kind], Value: e.Value,
			ResourceAppId: e.ResourceAppID, Requirement: requirements[e.Requirement]})
	}
	return out
}

func (h *catalogs) GetPermissionCatalogOverride(ctx context.Context, req *v1.GetPermissionCatalogOverrideRequest) (*v1.GetPermissionCatalogOverrideResponse, error) {
	n, err := parseOverrideName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	o, err := h.d.Catalogs.GetOverride(ctx, n.Org)
	if err != nil {
		return nil, err
	}
	return &v1.GetPermissionCatalogOverrideResponse{PermissionCatalogOverride: overrideToProto(o)}, nil
}

func (h *catalogs) UpdatePermissionCatalogOverride(ctx context.Context, req *v1.UpdatePermissionCatalogOverrideRequest) (*v1.UpdatePermissionCatalogOverrideResponse, error) {
	var v apperr.Violations
	in := req.GetPermissionCatalogOverride()
	n, err := parseOverrideName("permission_catalog_override.name", in.GetName())
	if err != nil {
		return nil, err
	}
	// The one mutable field: an empty mask means entries (an empty list
	// clears the override).
	maskPaths(&v, req.GetUpdateMask(), []string{"entries"}, func(string) bool { return true })
	revision := int64(-1)
	if e := strings.Trim(in.GetEtag(), `"`); e != "" {
		r, err := strconv.ParseInt(e, 10, 64)
		v.Check(err == nil && r >= 0, "permission_catalog_override.etag", "is not an etag this service issued")
		revision = r
	}
	// The entries are validated against the catalog by the domain
	// (organization.Catalogs.UpdateOverride), every bad field named: an
	// unknown kind or requirement reaches it as "".
	entries := make([]catalog.Override, 0, len(in.GetEntries()))
	for _, e := range in.GetEntries() {
		entries = append(entries, catalog.Override{Kind: kinds[e.GetKind()], ResourceAppID: strings.ToLower(e.GetResourceAppId()),
			Value: e.GetValue(), Requirement: requirementsFromProto[e.GetRequirement()]})
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	o, err := h.d.Catalogs.UpdateOverride(ctx, n.Org, revision, entries)
	if err != nil {
		return nil, err
	}
	return &v1.UpdatePermissionCatalogOverrideResponse{PermissionCatalogOverride: overrideToProto(o)}, nil
}
