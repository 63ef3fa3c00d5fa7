package handlers

import (
	"context"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
)

type catalogs struct {
	v1.UnimplementedCatalogServiceServer
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
)

func (catalogs) GetPermissionCatalog(_ context.Context, req *v1.GetPermissionCatalogRequest) (*v1.GetPermissionCatalogResponse, error) {
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
	if err := v.Err(); err != nil {
		return nil, err
	}
	resp := &v1.GetPermissionCatalogResponse{Version: catalog.Version}
	for _, e := range catalog.For(kind, fs) {
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
			Note:                e.Note,
		})
	}
	return resp, nil
}
