package handlers

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type organizations struct {
	v1.UnimplementedOrganizationServiceServer
	d Deps
}

func orgToProto(o organization.Organization) *v1.Organization {
	out := &v1.Organization{
		Name:        resource.Org{Org: o.ID}.String(),
		DisplayName: o.DisplayName,
		CreateTime:  ts(o.CreateTime),
		UpdateTime:  ts(o.UpdateTime),
		Etag:        etag(o.Version),

		CredentialOverlap:          durationpb.New(o.CredentialOverlap),
		CredentialRenewalThreshold: durationpb.New(o.CredentialRenewalThreshold),
	}
	if o.ProvisionerClientID != uuid.Nil {
		out.ProvisionerClientId = o.ProvisionerClientID.String()
	}
	return out
}

func (h *organizations) CreateOrganization(ctx context.Context, req *v1.CreateOrganizationRequest) (*v1.CreateOrganizationResponse, error) {
	var v apperr.Violations
	in := req.GetOrganization()
	if in == nil {
		v.Add("organization", "required")
	}
	checkDisplayName(&v, "organization.display_name", in.GetDisplayName(), true)
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.CreateOrganizationRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	o, err := h.d.Organizations.CreateOrganization(ctx, organization.Organization{ID: uuid.Must(uuid.NewV7()), DisplayName: in.GetDisplayName()}, key)
	if err != nil {
		return nil, err
	}
	return &v1.CreateOrganizationResponse{Organization: orgToProto(o)}, nil
}

func (h *organizations) GetOrganization(ctx context.Context, req *v1.GetOrganizationRequest) (*v1.GetOrganizationResponse, error) {
	n, err := resource.ParseOrg("name", req.GetName())
	if err != nil {
		return nil, err
	}
	o, err := h.d.Organizations.GetOrganization(ctx, n.Org)
	if err != nil {
		return nil, err
	}
	return &v1.GetOrganizationResponse{Organization: orgToProto(o)}, nil
}

func (h *organizations) ListOrganizations(ctx context.Context, req *v1.ListOrganizationsRequest) (*v1.ListOrganizationsResponse, error) {
	p, err := parsePage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.Organizations.ListOrganizations(ctx, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListOrganizationsResponse{}
	for _, o := range rows {
		resp.Organizations = append(resp.Organizations, orgToProto(o))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID)
	}
	return resp, nil
}

func (h *organizations) UpdateOrganization(ctx context.Context, req *v1.UpdateOrganizationRequest) (*v1.UpdateOrganizationResponse, error) {
	var v apperr.Violations
	in := req.GetOrganization()
	n, err := resource.ParseOrg("organization.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "organization.etag", in.GetEtag())
	paths := maskPaths(&v, req.GetUpdateMask(), []string{"display_name", "credential_overlap", "credential_renewal_threshold"},
		func(p string) bool {
			switch p {
			case "credential_overlap":
				return in.GetCredentialOverlap() != nil
			case "credential_renewal_threshold":
				return in.GetCredentialRenewalThreshold() != nil
			}
			return in.GetDisplayName() != ""
		})
	if paths["display_name"] {
		checkDisplayName(&v, "organization.display_name", in.GetDisplayName(), true)
	}
	// Each setting in its range here; together (the threshold longer than
	// the overlap) in the use case, which sees the values not changed.
	overlap := orgDuration(&v, paths["credential_overlap"], "organization.credential_overlap", in.GetCredentialOverlap(),
		organization.ValidateCredentialOverlap)
	threshold := orgDuration(&v, paths["credential_renewal_threshold"], "organization.credential_renewal_threshold",
		in.GetCredentialRenewalThreshold(), organization.ValidateRenewalThreshold)
	if err := v.Err(); err != nil {
		return nil, err
	}
	o, err := h.d.Organizations.UpdateOrganization(ctx, n.Org, version, func(o *organization.Organization) error {
		if paths["display_name"] {
			o.DisplayName = in.GetDisplayName()
		}
		if paths["credential_overlap"] {
			o.CredentialOverlap = overlap
		}
		if paths["credential_renewal_threshold"] {
			o.CredentialRenewalThreshold = threshold
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateOrganizationResponse{Organization: orgToProto(o)}, nil
}

func (h *organizations) DeleteOrganization(ctx context.Context, req *v1.DeleteOrganizationRequest) (*v1.DeleteOrganizationResponse, error) {
	var v apperr.Violations
	n, err := resource.ParseOrg("name", req.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := h.d.Organizations.DeleteOrganization(ctx, n.Org, version); err != nil {
		return nil, err
	}
	return &v1.DeleteOrganizationResponse{}, nil
}

// orgDuration reads a duration setting named in the update mask: required
// (a masked field without a value would silently become 0), valid, and in
// the range rule checks.
func orgDuration(v *apperr.Violations, set bool, field string, d *durationpb.Duration,
	rule func(*apperr.Violations, string, time.Duration)) time.Duration {
	if !set {
		return 0
	}
	if d == nil {
		v.Add(field, "required when named in update_mask")
		return 0
	}
	if err := d.CheckValid(); err != nil {
		v.Add(field, "not a valid duration")
		return 0
	}
	out := d.AsDuration()
	rule(v, field, out)
	return out
}
