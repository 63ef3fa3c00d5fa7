package handlers

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type integrations struct {
	v1.UnimplementedIntegrationServiceServer
	d Deps
}

func nullUUID(u uuid.NullUUID) string {
	if !u.Valid {
		return ""
	}
	return u.UUID.String()
}

func integrationToProto(i integration.Integration) *v1.Integration {
	out := &v1.Integration{
		Name:           resource.Integration{Org: i.Org, Tenant: i.Tenant, Integration: i.ID}.String(),
		DisplayName:    i.DisplayName,
		Kind:           kindToProto[i.Kind],
		ManagementMode: modeToProto[i.Mode],
		Application: &v1.EntraApplication{
			ClientId:                 i.ClientID.String(),
			ApplicationObjectId:      nullUUID(i.AppObjectID),
			ServicePrincipalObjectId: nullUUID(i.ServicePrincipal),
		},
		Credential:    activeCredentialToProto(i),
		State:         stateToProto[i.State],
		LastCheckTime: tsp(i.LastCheckTime),
		CreateTime:    ts(i.CreateTime),
		UpdateTime:    ts(i.UpdateTime),
		Etag:          etag(i.Version),
	}
	for _, f := range i.Features {
		out.Features = append(out.Features, featureToProto[f])
	}
	for _, c := range i.Credentials {
		out.Credentials = append(out.Credentials, credentialToProto(i, c))
	}
	if s := i.Sentinel; s != nil {
		out.Sentinel = &v1.SentinelWorkspace{
			SubscriptionId: s.SubscriptionID.String(),
			ResourceGroup:  s.ResourceGroup,
			WorkspaceName:  s.WorkspaceName,
			WorkspaceId:    s.WorkspaceID.String(),
		}
	}
	return out
}

// activeCredentialToProto fills the deprecated singular credential from
// the active credential (empty when there is none).
func activeCredentialToProto(i integration.Integration) *v1.Credential {
	c, ok := i.Active()
	if !ok {
		return &v1.Credential{}
	}
	return &v1.Credential{
		KeyId:      nullUUID(c.KeyID),
		Hint:       c.Hint,
		CreateTime: ts(c.CreateTime),
		ExpireTime: tsp(c.EndTime),
		Version:    c.SecretVersion,
	}
}

func credentialToProto(i integration.Integration, c integration.Credential) *v1.IntegrationCredential {
	return &v1.IntegrationCredential{
		Name:           resource.Integration{Org: i.Org, Tenant: i.Tenant, Integration: i.ID}.String() + "/credentials/" + c.ID.String(),
		Type:           credentialTypeToProto[c.Type],
		KeyId:          nullUUID(c.KeyID),
		Hint:           c.Hint,
		StartTime:      tsp(c.StartTime),
		EndTime:        tsp(c.EndTime),
		Source:         credentialSourceToProto[c.Source],
		State:          credentialStateToProto[c.State],
		CreateTime:     ts(c.CreateTime),
		UpdateTime:     ts(c.UpdateTime),
		OverlapEndTime: tsp(c.OverlapEnd),
	}
}

// checkFeatures validates features for kind and returns them deduplicated.
func checkFeatures(v *apperr.Violations, field string, kind integration.Kind, in []v1.Feature) []integration.Feature {
	valid := catalog.FeaturesOf(kind)
	out := []integration.Feature{}
	if !v.CheckLen(field, len(in)) {
		return out
	}
	for _, pf := range in {
		f, ok := features[pf]
		switch {
		case !ok:
			v.Add(field, "unknown feature %s", pf)
		case !slices.Contains(valid, f):
			v.Add(field, "feature %s is not available for %s integrations", pf, kind)
		case !slices.Contains(out, f):
			out = append(out, f)
		}
	}
	return out
}

func checkSentinel(v *apperr.Violations, field string, kind integration.Kind, s *v1.SentinelWorkspace) *integration.Sentinel {
	if kind != integration.KindSentinel {
		v.Check(s == nil, field, "only Microsoft Sentinel integrations have a workspace")
		return nil
	}
	if s == nil {
		v.Add(field, "required for Microsoft Sentinel integrations")
		return nil
	}
	out := &integration.Sentinel{
		SubscriptionID: checkGUID(v, field+".subscription_id", s.GetSubscriptionId(), true),
		ResourceGroup:  s.GetResourceGroup(),
		WorkspaceName:  s.GetWorkspaceName(),
		WorkspaceID:    checkGUID(v, field+".workspace_id", s.GetWorkspaceId(), true),
	}
	checkResourceGroup(v, field+".resource_group", s.GetResourceGroup())
	checkWorkspaceName(v, field+".workspace_name", s.GetWorkspaceName())
	return out
}

func checkExpiry(v *apperr.Violations, field string, c *v1.Credential) *time.Time {
	if c.GetExpireTime() == nil {
		return nil
	}
	t := c.GetExpireTime().AsTime()
	if !c.GetExpireTime().IsValid() || !t.After(time.Now()) {
		v.Add(field, "must be a valid time in the future (an expired secret cannot work; create a new one)")
	}
	return &t
}

func checkHint(v *apperr.Violations, field, s string) {
	v.Check(len(s) <= 3, field, "must be at most 3 characters (the secret's first characters, as Entra shows them)")
}

func (h *integrations) CreateIntegration(ctx context.Context, req *v1.CreateIntegrationRequest) (*v1.CreateIntegrationResponse, error) {
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
	fs := checkFeatures(&v, "integration.features", kind, in.GetFeatures())
	app := in.GetApplication()
	clientID := checkGUID(&v, "integration.application.client_id", app.GetClientId(), true)
	appObj := checkGUID(&v, "integration.application.application_object_id", app.GetApplicationObjectId(), false)
	spObj := checkGUID(&v, "integration.application.service_principal_object_id", app.GetServicePrincipalObjectId(), false)
	sentinel := checkSentinel(&v, "integration.sentinel", kind, in.GetSentinel())
	keyID := checkGUID(&v, "integration.credential.key_id", in.GetCredential().GetKeyId(), false)
	checkHint(&v, "integration.credential.hint", in.GetCredential().GetHint())
	expire := checkExpiry(&v, "integration.credential.expire_time", in.GetCredential())
	checkClientSecret(&v, "client_secret", req.GetClientSecret(), true)
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) {
		r := m.(*v1.CreateIntegrationRequest)
		r.RequestId, r.ClientSecret = "", ""
	})
	if err := v.Err(); err != nil {
		return nil, err
	}
	i, err := h.d.Integrations.CreateCustomerManaged(ctx, integration.Integration{
		Org: parent.Org, Tenant: parent.Tenant, DisplayName: in.GetDisplayName(), Kind: kind, Features: fs,
		ClientID: clientID, AppObjectID: uuid.NullUUID{UUID: appObj, Valid: appObj != uuid.Nil},
		ServicePrincipal: uuid.NullUUID{UUID: spObj, Valid: spObj != uuid.Nil}, Sentinel: sentinel,
	}, integration.CredentialMeta{KeyID: uuid.NullUUID{UUID: keyID, Valid: keyID != uuid.Nil},
		Hint: in.GetCredential().GetHint(), EndTime: expire}, req.GetClientSecret(), key)
	if err != nil {
		return nil, err
	}
	return &v1.CreateIntegrationResponse{Integration: integrationToProto(i)}, nil
}

func (h *integrations) GetIntegration(ctx context.Context, req *v1.GetIntegrationRequest) (*v1.GetIntegrationResponse, error) {
	n, err := resource.ParseIntegration("name", req.GetName())
	if err != nil {
		return nil, err
	}
	i, err := h.d.Integrations.Get(ctx, n.Org, n.Integration)
	if err != nil || i.Tenant != n.Tenant {
		return nil, notFoundUnless(err, req.GetName())
	}
	return &v1.GetIntegrationResponse{Integration: integrationToProto(i)}, nil
}

// notFoundUnless returns err, or NotFound for a name whose parent did not
// match the stored row.
func notFoundUnless(err error, name string) error {
	if err != nil {
		return err
	}
	return apperr.NotFoundf(name)
}

func (h *integrations) ListIntegrations(ctx context.Context, req *v1.ListIntegrationsRequest) (*v1.ListIntegrationsResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseTenantParent("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	f := integration.Filter{Tenant: parent.Tenant}
	if req.GetKind() != v1.IntegrationKind_INTEGRATION_KIND_UNSPECIFIED {
		k, ok := kinds[req.GetKind()]
		v.Check(ok, "kind", "unknown integration kind")
		f.Kind = k
	}
	if req.GetState() != v1.IntegrationState_INTEGRATION_STATE_UNSPECIFIED {
		s, ok := states[req.GetState()]
		v.Check(ok, "state", "unknown integration state")
		f.State = s
	}
	if eb := req.GetExpireBefore(); eb != nil {
		v.Check(eb.IsValid(), "expire_before", "must be a valid time")
		f.ExpireBefore = eb.AsTime()
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	filters := []string{req.GetParent(), string(f.Kind), string(f.State), f.ExpireBefore.String()}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), filters...)
	if err != nil {
		return nil, err
	}
	if !parent.AllTenants {
		// A named tenant must exist (NotFound otherwise), as for any parent.
		if _, err := h.d.Tenants.GetTenant(ctx, parent.Org, parent.Tenant); err != nil {
			return nil, err
		}
	}
	rows, err := h.d.Integrations.List(ctx, parent.Org, f, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListIntegrationsResponse{}
	for _, i := range rows {
		resp.Integrations = append(resp.Integrations, integrationToProto(i))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID, filters...)
	}
	return resp, nil
}

var integrationMutable = []string{
	"display_name", "features", "sentinel", "credential.expire_time", "credential.key_id", "credential.hint",
	"application.application_object_id", "application.service_principal_object_id",
}

func (h *integrations) UpdateIntegration(ctx context.Context, req *v1.UpdateIntegrationRequest) (*v1.UpdateIntegrationResponse, error) {
	var v apperr.Violations
	in := req.GetIntegration()
	n, err := resource.ParseIntegration("integration.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "integration.etag", in.GetEtag())
	paths := maskPaths(&v, req.GetUpdateMask(), integrationMutable, func(p string) bool {
		switch p {
		case "display_name":
			return in.GetDisplayName() != ""
		case "features":
			return len(in.GetFeatures()) > 0
		case "sentinel":
			return in.GetSentinel() != nil
		case "credential.expire_time":
			return in.GetCredential().GetExpireTime() != nil
		case "credential.key_id":
			return in.GetCredential().GetKeyId() != ""
		case "credential.hint":
			return in.GetCredential().GetHint() != ""
		case "application.application_object_id":
			return in.GetApplication().GetApplicationObjectId() != ""
		case "application.service_principal_object_id":
			return in.GetApplication().GetServicePrincipalObjectId() != ""
		}
		return false
	})
	checkDisplayName(&v, "integration.display_name", in.GetDisplayName(), false)
	checkClientSecret(&v, "client_secret", req.GetClientSecret(), false)
	keyID := checkGUID(&v, "integration.credential.key_id", in.GetCredential().GetKeyId(), false)
	checkHint(&v, "integration.credential.hint", in.GetCredential().GetHint())
	appObj := checkGUID(&v, "integration.application.application_object_id", in.GetApplication().GetApplicationObjectId(), false)
	spObj := checkGUID(&v, "integration.application.service_principal_object_id", in.GetApplication().GetServicePrincipalObjectId(), false)
	var expire *time.Time
	if paths["credential.expire_time"] {
		expire = checkExpiry(&v, "integration.credential.expire_time", in.GetCredential())
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if len(paths) == 0 && req.GetClientSecret() == "" {
		return nil, apperr.Invalid("update_mask", "nothing to update")
	}
	// Kind-dependent checks need the stored kind: they run inside the
	// update, before anything is written.
	mutate := func(i *integration.Integration, cred *integration.CredentialMeta) error {
		var v apperr.Violations
		if paths["display_name"] {
			i.DisplayName = in.GetDisplayName()
		}
		if paths["features"] {
			i.Features = checkFeatures(&v, "integration.features", i.Kind, in.GetFeatures())
		}
		if paths["sentinel"] {
			i.Sentinel = checkSentinel(&v, "integration.sentinel", i.Kind, in.GetSentinel())
		}
		if paths["credential.expire_time"] {
			cred.EndTime = expire // a new end time re-arms the expiry warning (integration.Service)
		}
		if paths["credential.key_id"] {
			cred.KeyID = uuid.NullUUID{UUID: keyID, Valid: keyID != uuid.Nil}
		}
		if paths["credential.hint"] {
			cred.Hint = in.GetCredential().GetHint()
		}
		if paths["application.application_object_id"] {
			i.AppObjectID = uuid.NullUUID{UUID: appObj, Valid: appObj != uuid.Nil}
		}
		if paths["application.service_principal_object_id"] {
			i.ServicePrincipal = uuid.NullUUID{UUID: spObj, Valid: spObj != uuid.Nil}
		}
		if i.Tenant != n.Tenant {
			return apperr.NotFoundf(in.GetName())
		}
		return v.Err()
	}
	// With a secret, mutate runs (and may refuse) before Vault is written
	// (integration.Service.UpdateSecret, step 1).
	if req.GetClientSecret() != "" {
		r, err := h.d.Integrations.UpdateSecret(ctx, n.Org, n.Integration, version, mutate, req.GetClientSecret())
		if err != nil {
			return nil, err
		}
		resp := &v1.UpdateIntegrationResponse{Integration: integrationToProto(r.Integration), NextStep: r.NextStep}
		if r.Replaced != nil {
			resp.ReplacedCredential = credentialToProto(r.Integration, *r.Replaced)
		}
		return resp, nil
	}
	i, err := h.d.Integrations.Update(ctx, n.Org, n.Integration, version, mutate, "")
	if err != nil {
		return nil, err
	}
	return &v1.UpdateIntegrationResponse{Integration: integrationToProto(i)}, nil
}

func (h *integrations) DeleteIntegration(ctx context.Context, req *v1.DeleteIntegrationRequest) (*v1.DeleteIntegrationResponse, error) {
	var v apperr.Violations
	n, err := resource.ParseIntegration("name", req.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	cur, err := h.d.Integrations.Get(ctx, n.Org, n.Integration)
	if err != nil || cur.Tenant != n.Tenant {
		return nil, notFoundUnless(err, req.GetName())
	}
	if err := h.d.Integrations.Delete(ctx, n.Org, n.Integration, version); err != nil {
		return nil, err
	}
	return &v1.DeleteIntegrationResponse{}, nil
}
