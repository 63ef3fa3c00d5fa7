package handlers

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type provisioning struct {
	v1.UnimplementedProvisioningServiceServer
	d Deps
}

var sentinelRoles = map[v1.SentinelRole]provision.Role{
	v1.SentinelRole_SENTINEL_ROLE_UNSPECIFIED: provision.RoleReader,
	v1.SentinelRole_SENTINEL_ROLE_READER:      provision.RoleReader,
	v1.SentinelRole_SENTINEL_ROLE_RESPONDER:   provision.RoleResponder,
}

// ProvisionIntegration validates the spec and starts the provision
// operation.
func (h *provisioning) ProvisionIntegration(ctx context.Context, req *v1.ProvisionIntegrationRequest) (*v1.ProvisionIntegrationResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseTenant("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	sp := req.GetSpec()
	if sp == nil {
		v.Add("spec", "required")
	}
	kind, ok := kinds[sp.GetKind()]
	v.Check(ok, "spec.kind", "must be INTEGRATION_KIND_MICROSOFT_365_DEFENDER or INTEGRATION_KIND_MICROSOFT_SENTINEL")
	checkDisplayName(&v, "spec.display_name", sp.GetDisplayName(), false)
	spec := provision.Spec{Kind: kind, DisplayName: sp.GetDisplayName(), CertificatePEM: sp.GetCertificatePem()}
	if ok {
		spec.Features = checkFeatures(&v, "spec.features", kind, sp.GetFeatures())
	}
	if l := sp.GetSecretLifetime(); l != nil {
		d := l.AsDuration()
		switch {
		case !l.IsValid() || d < time.Hour:
			v.Add("spec.secret_lifetime", "must be at least 1 hour")
		case d > provision.MaxSecretLifetime:
			v.Add("spec.secret_lifetime", "must be at most 730 days (2 years)")
		}
		spec.SecretLifetime = d
	}
	if c := sp.GetCertificatePem(); c != "" {
		if _, err := provision.ParseCertificatePEM(c); err != nil {
			v.Add("spec.certificate_pem", "%s", err)
		}
	}
	role, ok := sentinelRoles[sp.GetSentinelRole()]
	v.Check(ok, "spec.sentinel_role", "must be SENTINEL_ROLE_READER or SENTINEL_ROLE_RESPONDER")
	ws := sp.GetWorkspace()
	switch {
	case kind == integration.KindSentinel && ws == nil:
		v.Add("spec.workspace", "required for Microsoft Sentinel: its ARM ID, or subscription_id, resource_group and workspace_name")
	case kind == integration.KindSentinel:
		spec.Role = role
		spec.Workspace = checkProvisioningWorkspace(&v, "spec.workspace", ws)
	case ok && kind != "":
		v.Check(ws == nil, "spec.workspace", "only Microsoft Sentinel integrations have a workspace")
		v.Check(sp.GetSentinelRole() == v1.SentinelRole_SENTINEL_ROLE_UNSPECIFIED, "spec.sentinel_role", "only Microsoft Sentinel integrations have a role")
	}
	if u := req.GetConsentRedirectUri(); u != "" {
		checkRedirectURI(&v, "consent_redirect_uri", u)
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) {
		r := m.(*v1.ProvisionIntegrationRequest)
		r.RequestId, r.ConsentRedirectUri = "", ""
	})
	if err := v.Err(); err != nil {
		return nil, err
	}
	op, err := h.d.Provisioning.Start(ctx, parent.Org, parent.Tenant, spec, key, req.GetConsentRedirectUri())
	if err != nil {
		return nil, err
	}
	return &v1.ProvisionIntegrationResponse{Operation: operationToProto(op)}, nil
}

// DeprovisionIntegration validates the request and starts the deprovision
// operation.
func (h *provisioning) DeprovisionIntegration(ctx context.Context, req *v1.DeprovisionIntegrationRequest) (*v1.DeprovisionIntegrationResponse, error) {
	var v apperr.Violations
	name, err := resource.ParseIntegration("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.DeprovisionIntegrationRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	op, err := h.d.Provisioning.Deprovision(ctx, name, req.GetKeepApplication(), key)
	if err != nil {
		return nil, err
	}
	return &v1.DeprovisionIntegrationResponse{Operation: operationToProto(op)}, nil
}

// RotateCredential validates the request and starts the rotate operation.
func (h *provisioning) RotateCredential(ctx context.Context, req *v1.RotateCredentialRequest) (*v1.RotateCredentialResponse, error) {
	var v apperr.Violations
	name, err := resource.ParseIntegration("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.RotateCredentialRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	op, err := h.d.Provisioning.Rotate(ctx, name, key)
	if err != nil {
		return nil, err
	}
	return &v1.RotateCredentialResponse{Operation: operationToProto(op)}, nil
}

// GenerateCertificateCredential validates the request and starts the
// rotate operation's certificate variant.
func (h *provisioning) GenerateCertificateCredential(ctx context.Context, req *v1.GenerateCertificateCredentialRequest) (*v1.GenerateCertificateCredentialResponse, error) {
	var v apperr.Violations
	name, err := resource.ParseIntegration("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.GenerateCertificateCredentialRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	op, err := h.d.Provisioning.GenerateCertificate(ctx, name, key)
	if err != nil {
		return nil, err
	}
	return &v1.GenerateCertificateCredentialResponse{Operation: operationToProto(op)}, nil
}

// checkProvisioningWorkspace reads a workspace given by ARM ID or by parts
// (not both).
func checkProvisioningWorkspace(v *apperr.Violations, field string, ws *v1.ProvisioningWorkspace) *provision.Workspace {
	parts := ws.GetSubscriptionId() != "" || ws.GetResourceGroup() != "" || ws.GetWorkspaceName() != ""
	if id := ws.GetResourceId(); id != "" {
		if parts {
			v.Add(field, "give either resource_id or subscription_id, resource_group and workspace_name, not both")
			return nil
		}
		w, err := provision.ParseWorkspaceID(id)
		if err != nil {
			v.Add(field+".resource_id", "%s", err)
			return nil
		}
		checkResourceGroup(v, field+".resource_id", w.ResourceGroup)
		checkWorkspaceName(v, field+".resource_id", w.Name)
		return &w
	}
	w := provision.Workspace{SubscriptionID: checkGUID(v, field+".subscription_id", ws.GetSubscriptionId(), true),
		ResourceGroup: ws.GetResourceGroup(), Name: ws.GetWorkspaceName()}
	checkResourceGroup(v, field+".resource_group", w.ResourceGroup)
	checkWorkspaceName(v, field+".workspace_name", w.Name)
	return &w
}
