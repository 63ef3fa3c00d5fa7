package handlers

import (
	"context"
	"maps"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

type tenants struct {
	v1.UnimplementedTenantServiceServer
	d Deps
}

func tenantToProto(t tenant.Tenant) *v1.Tenant {
	return &v1.Tenant{
		Name:          resource.Tenant{Org: t.Org, Tenant: t.ID}.String(),
		EntraTenantId: t.EntraTenantID.String(),
		Cloud:         cloudToProto[t.Cloud],
		DisplayName:   t.DisplayName,
		Labels:        t.Labels,
		CreateTime:    ts(t.CreateTime),
		UpdateTime:    ts(t.UpdateTime),
		Etag:          etag(t.Version),

		ProvisionerConsentTime: tsp(t.ProvisionerConsentTime),
	}
}

func (h *tenants) CreateTenant(ctx context.Context, req *v1.CreateTenantRequest) (*v1.CreateTenantResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetTenant()
	if in == nil {
		v.Add("tenant", "required")
	}
	entraID := checkGUID(&v, "tenant.entra_tenant_id", in.GetEntraTenantId(), true)
	cloud, ok := clouds[in.GetCloud()]
	v.Check(ok, "tenant.cloud", "must be CLOUD_GLOBAL, CLOUD_US_GOV_GCC, CLOUD_US_GOV_GCC_HIGH, CLOUD_US_GOV_DOD or CLOUD_CHINA")
	checkDisplayName(&v, "tenant.display_name", in.GetDisplayName(), true)
	checkLabels(&v, "tenant.labels", in.GetLabels())
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.CreateTenantRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	t, err := h.d.Tenants.CreateTenant(ctx, tenant.Tenant{
		Org: parent.Org, ID: uuid.Must(uuid.NewV7()), EntraTenantID: entraID, Cloud: cloud,
		DisplayName: in.GetDisplayName(), Labels: in.GetLabels(),
	}, key)
	if err != nil {
		return nil, err
	}
	return &v1.CreateTenantResponse{Tenant: tenantToProto(t)}, nil
}

func (h *tenants) GetTenant(ctx context.Context, req *v1.GetTenantRequest) (*v1.GetTenantResponse, error) {
	n, err := resource.ParseTenant("name", req.GetName())
	if err != nil {
		return nil, err
	}
	t, err := h.d.Tenants.GetTenant(ctx, n.Org, n.Tenant)
	if err != nil {
		return nil, err
	}
	return &v1.GetTenantResponse{Tenant: tenantToProto(t)}, nil
}

func (h *tenants) ListTenants(ctx context.Context, req *v1.ListTenantsRequest) (*v1.ListTenantsResponse, error) {
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.Tenants.ListTenants(ctx, parent.Org, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListTenantsResponse{}
	for _, t := range rows {
		resp.Tenants = append(resp.Tenants, tenantToProto(t))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID, req.GetParent())
	}
	return resp, nil
}

func (h *tenants) UpdateTenant(ctx context.Context, req *v1.UpdateTenantRequest) (*v1.UpdateTenantResponse, error) {
	var v apperr.Violations
	in := req.GetTenant()
	n, err := resource.ParseTenant("tenant.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "tenant.etag", in.GetEtag())
	paths := maskPaths(&v, req.GetUpdateMask(), []string{"display_name", "labels"}, func(p string) bool {
		if p == "labels" {
			return len(in.GetLabels()) > 0
		}
		return in.GetDisplayName() != ""
	})
	if paths["display_name"] {
		checkDisplayName(&v, "tenant.display_name", in.GetDisplayName(), true)
	}
	if paths["labels"] {
		checkLabels(&v, "tenant.labels", in.GetLabels())
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	t, err := h.d.Tenants.UpdateTenant(ctx, n.Org, n.Tenant, version, func(t *tenant.Tenant) error {
		if paths["display_name"] {
			t.DisplayName = in.GetDisplayName()
		}
		if paths["labels"] {
			t.Labels = maps.Clone(in.GetLabels())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateTenantResponse{Tenant: tenantToProto(t)}, nil
}

func (h *tenants) DeleteTenant(ctx context.Context, req *v1.DeleteTenantRequest) (*v1.DeleteTenantResponse, error) {
	var v apperr.Violations
	n, err := resource.ParseTenant("name", req.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := h.d.Tenants.DeleteTenant(ctx, n.Org, n.Tenant, version); err != nil {
		return nil, err
	}
	return &v1.DeleteTenantResponse{}, nil
}
