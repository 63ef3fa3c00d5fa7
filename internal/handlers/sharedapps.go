package handlers

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
)

// sharedApps implements SharedApplicationService (shared mode).
type sharedApps struct {
	v1.UnimplementedSharedApplicationServiceServer
	d Deps
}

// sharedAppName is a parsed organizations/{o}/sharedApplications/{kind}.
type sharedAppName struct {
	Org  resource.Org
	Kind integration.Kind
}

// parseSharedAppName parses a shared application's resource name; the
// last segment is the kind's slug.
func parseSharedAppName(field, name string) (sharedAppName, error) {
	const pattern = "organizations/{organization}/sharedApplications/{kind} (kind microsoft-365-defender or microsoft-sentinel)"
	org, kind, ok := strings.Cut(name, "/sharedApplications/")
	if !ok {
		return sharedAppName{}, apperr.Invalid(field, "must be %s", pattern)
	}
	o, err := resource.ParseOrg(field, org)
	if err != nil {
		return sharedAppName{}, err
	}
	k := integration.Kind(kind)
	if k != integration.KindDefender && k != integration.KindSentinel {
		return sharedAppName{}, apperr.Invalid(field, "must be %s", pattern)
	}
	return sharedAppName{Org: o, Kind: k}, nil
}

// sharedAppToProto converts a; its manifest and tenant steps come from cat
// (the catalog dzconnect runs with).
func sharedAppToProto(cat *catalog.Catalog, a sharedapp.App) *v1.SharedApplication {
	fs := make([]v1.Feature, 0, len(a.Features))
	for _, f := range a.Features {
		fs = append(fs, featureToProto[f])
	}
	return &v1.SharedApplication{
		Name: sharedapp.Name(a.Org, a.Kind), Kind: kindToProto[a.Kind], ClientId: a.ClientID.String(),
		DisplayName: a.DisplayName, Features: fs, SecretExpireTime: tsp(a.SecretEndTime), SecretVersion: a.SecretVersion,
		ManifestJson: sharedapp.ManifestFor(cat, a.Kind, a.Features).JSON(), TenantSteps: sharedapp.TenantSteps(cat, a.Kind, a.Features),
		CreateTime: ts(a.CreateTime), UpdateTime: ts(a.UpdateTime), Etag: etag(a.Version),
	}
}

// checkSecretExpiry validates an optional secret expiry: in the future.
func checkSecretExpiry(v *apperr.Violations, field string, a *v1.SharedApplication) *time.Time {
	return checkExpiry(v, field, &v1.Credential{ExpireTime: a.GetSecretExpireTime()})
}

func (h *sharedApps) CreateSharedApplication(ctx context.Context, req *v1.CreateSharedApplicationRequest) (*v1.CreateSharedApplicationResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	a := req.GetSharedApplication()
	if a == nil {
		v.Add("shared_application", "required")
	}
	kind, ok := kinds[a.GetKind()]
	v.Check(ok, "shared_application.kind", "must be INTEGRATION_KIND_MICROSOFT_365_DEFENDER or INTEGRATION_KIND_MICROSOFT_SENTINEL")
	clientID := checkGUID(&v, "shared_application.client_id", a.GetClientId(), true)
	checkDisplayName(&v, "shared_application.display_name", a.GetDisplayName(), false)
	fs := checkFeatures(&v, "shared_application.features", kind, a.GetFeatures())
	end := checkSecretExpiry(&v, "shared_application.secret_expire_time", a)
	checkClientSecret(&v, "client_secret", req.GetClientSecret(), true)
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) {
		r := m.(*v1.CreateSharedApplicationRequest)
		r.RequestId, r.ClientSecret = "", ""
	})
	if err := v.Err(); err != nil {
		return nil, err
	}
	out, err := h.d.SharedApps.Create(ctx, sharedapp.App{Org: parent.Org, Kind: kind, ClientID: clientID,
		DisplayName: a.GetDisplayName(), Features: fs, SecretEndTime: end}, req.GetClientSecret(), key)
	if err != nil {
		return nil, err
	}
	return &v1.CreateSharedApplicationResponse{SharedApplication: sharedAppToProto(h.d.Catalogs.Base(), out)}, nil
}

func (h *sharedApps) GetSharedApplication(ctx context.Context, req *v1.GetSharedApplicationRequest) (*v1.GetSharedApplicationResponse, error) {
	n, err := parseSharedAppName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	a, err := h.d.SharedApps.Get(ctx, n.Org.Org, n.Kind)
	if err != nil {
		return nil, err
	}
	return &v1.GetSharedApplicationResponse{SharedApplication: sharedAppToProto(h.d.Catalogs.Base(), a)}, nil
}

func (h *sharedApps) ListSharedApplications(ctx context.Context, req *v1.ListSharedApplicationsRequest) (*v1.ListSharedApplicationsResponse, error) {
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	as, err := h.d.SharedApps.List(ctx, parent.Org)
	if err != nil {
		return nil, err
	}
	out := &v1.ListSharedApplicationsResponse{SharedApplications: make([]*v1.SharedApplication, 0, len(as))}
	for _, a := range as {
		out.SharedApplications = append(out.SharedApplications, sharedAppToProto(h.d.Catalogs.Base(), a))
	}
	return out, nil
}

func (h *sharedApps) UpdateSharedApplication(ctx context.Context, req *v1.UpdateSharedApplicationRequest) (*v1.UpdateSharedApplicationResponse, error) {
	var v apperr.Violations
	a := req.GetSharedApplication()
	n, err := parseSharedAppName("shared_application.name", a.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "shared_application.etag", a.GetEtag())
	end := checkSecretExpiry(&v, "shared_application.secret_expire_time", a)
	checkClientSecret(&v, "client_secret", req.GetClientSecret(), true)
	if k, ok := kinds[a.GetKind()]; ok && k != n.Kind {
		v.Add("shared_application.kind", "is immutable (the name's kind is %s)", n.Kind)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out, err := h.d.SharedApps.UpdateSecret(ctx, n.Org.Org, n.Kind, version, req.GetClientSecret(), end)
	if err != nil {
		return nil, err
	}
	return &v1.UpdateSharedApplicationResponse{SharedApplication: sharedAppToProto(h.d.Catalogs.Base(), out)}, nil
}

func (h *sharedApps) DeleteSharedApplication(ctx context.Context, req *v1.DeleteSharedApplicationRequest) (*v1.DeleteSharedApplicationResponse, error) {
	var v apperr.Violations
	n, err := parseSharedAppName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := h.d.SharedApps.Delete(ctx, n.Org.Org, n.Kind, version); err != nil {
		return nil, err
	}
	return &v1.DeleteSharedApplicationResponse{}, nil
}

func (h *sharedApps) GetSharedApplicationConsentLink(ctx context.Context, req *v1.GetSharedApplicationConsentLinkRequest) (*v1.GetSharedApplicationConsentLinkResponse, error) {
	var v apperr.Violations
	n, err := parseSharedAppName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	t, err := resource.ParseTenant("tenant", req.GetTenant())
	if err != nil {
		return nil, err
	}
	checkRedirectURI(&v, "redirect_uri", req.GetRedirectUri())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if t.Org != n.Org.Org {
		// Another organization's tenant is never visible.
		return nil, apperr.NotFoundf(req.GetTenant())
	}
	link, err := h.d.SharedApps.ConsentLink(ctx, n.Org.Org, t.Tenant, n.Kind, req.GetRedirectUri())
	if err != nil {
		return nil, err
	}
	return &v1.GetSharedApplicationConsentLinkResponse{Url: link.URL, ExpireTime: ts(link.ExpireTime)}, nil
}

func (h *sharedApps) CreateSharedIntegration(ctx context.Context, req *v1.CreateSharedIntegrationRequest) (*v1.CreateSharedIntegrationResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseTenant("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetIntegration()
	if in == nil {
		v.Add("integration", "required")
	}
	kind, ok := kinds[in.GetKind()]
	v.Check(ok, "integration.kind", "must be INTEGRATION_KIND_MICROSOFT_365_DEFENDER or INTEGRATION_KIND_MICROSOFT_SENTINEL")
	checkDisplayName(&v, "integration.display_name", in.GetDisplayName(), false)
	v.Check(len(in.GetFeatures()) == 0, "integration.features", "come from the shared application; leave empty")
	v.Check(in.GetApplication() == nil, "integration.application", "is the shared application's; leave empty")
	v.Check(in.GetCredential() == nil, "integration.credential", "is the shared application's; leave empty")
	var sentinel *integration.Sentinel
	if ok {
		sentinel = checkSentinel(&v, "integration.sentinel", kind, in.GetSentinel())
	}
	if r := req.GetConsentRedirectUri(); r != "" {
		checkRedirectURI(&v, "consent_redirect_uri", r)
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) {
		r := m.(*v1.CreateSharedIntegrationRequest)
		r.RequestId, r.ConsentRedirectUri = "", ""
	})
	if err := v.Err(); err != nil {
		return nil, err
	}
	out, err := h.d.SharedApps.CreateIntegration(ctx, parent.Org, parent.Tenant, sharedapp.IntegrationSpec{
		Kind: kind, DisplayName: in.GetDisplayName(), Sentinel: sentinel,
	}, key, req.GetConsentRedirectUri())
	if err != nil {
		return nil, err
	}
	return &v1.CreateSharedIntegrationResponse{Integration: integrationToProto(out)}, nil
}
