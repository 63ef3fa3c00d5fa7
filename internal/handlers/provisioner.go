package handlers

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

// SetOrganizationProvisioner registers the organization's provisioner
// application; the secret goes to Vault and is never returned.
func (h *organizations) SetOrganizationProvisioner(ctx context.Context, req *v1.SetOrganizationProvisionerRequest) (*v1.SetOrganizationProvisionerResponse, error) {
	var v apperr.Violations
	n, err := resource.ParseOrg("name", req.GetName())
	if err != nil {
		return nil, err
	}
	clientID := checkGUID(&v, "client_id", req.GetClientId(), true)
	checkClientSecret(&v, "client_secret", req.GetClientSecret(), true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	o, err := h.d.Consent.SetProvisioner(ctx, n.Org, clientID, req.GetClientSecret())
	if err != nil {
		return nil, err
	}
	return &v1.SetOrganizationProvisionerResponse{Organization: orgToProto(o)}, nil
}

// GetAdminConsentLink issues a single-use admin-consent link for a tenant.
func (h *tenants) GetAdminConsentLink(ctx context.Context, req *v1.GetAdminConsentLinkRequest) (*v1.GetAdminConsentLinkResponse, error) {
	var v apperr.Violations
	n, err := resource.ParseTenant("name", req.GetName())
	if err != nil {
		return nil, err
	}
	checkRedirectURI(&v, "redirect_uri", req.GetRedirectUri())
	if err := v.Err(); err != nil {
		return nil, err
	}
	link, err := h.d.Consent.AdminConsentLink(ctx, n.Org, n.Tenant, req.GetRedirectUri())
	if err != nil {
		return nil, err
	}
	return &v1.GetAdminConsentLinkResponse{Url: link.URL, ExpireTime: ts(link.ExpireTime)}, nil
}

// CompleteAdminConsent records the admin-consent redirect's parameters.
func (h *tenants) CompleteAdminConsent(ctx context.Context, req *v1.CompleteAdminConsentRequest) (*v1.CompleteAdminConsentResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	switch s := req.GetState(); {
	case s == "":
		v.Add("state", "required: the state parameter of the redirect")
	case len(s) != consent.StateLen || !stateRE.MatchString(s):
		v.Add("state", "is not a state issued by GetAdminConsentLink (%d base64url characters)", consent.StateLen)
	}
	if req.GetAdminConsent() == "" && req.GetError() == "" {
		v.Add("admin_consent", "required: the admin_consent parameter of the redirect, or error when Microsoft returned one")
	}
	if strings.EqualFold(req.GetAdminConsent(), "True") && req.GetError() == "" && req.GetTenant() == "" {
		v.Add("tenant", "required with admin_consent True: the tenant parameter of the redirect")
	}
	checkParam(&v, "admin_consent", req.GetAdminConsent(), 16)
	checkParam(&v, "tenant", req.GetTenant(), 64)
	checkParam(&v, "error", req.GetError(), 128)
	checkParam(&v, "error_description", req.GetErrorDescription(), 2048)
	checkParam(&v, "scope", req.GetScope(), 4096)
	if req.GetRedirectUri() == "" {
		v.Add("redirect_uri", "required: the URL the redirect arrived at (the redirect_uri the link was issued with)")
	} else {
		checkParam(&v, "redirect_uri", req.GetRedirectUri(), 8192)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	done, err := h.d.Consent.CompleteAdminConsent(ctx, parent.Org, consent.Callback{
		State: req.GetState(), AdminConsent: req.GetAdminConsent(), Tenant: req.GetTenant(),
		Error: req.GetError(), ErrorDescription: req.GetErrorDescription(), Scope: req.GetScope(), RedirectURI: req.GetRedirectUri(),
	})
	if err != nil {
		return nil, err
	}
	out := &v1.CompleteAdminConsentResponse{Tenant: tenantToProto(done.Tenant)}
	if p := done.Provisioner; p != nil {
		out.ProvisionerPermissions = &v1.ProvisionerPermissions{Granted: p.Granted, Missing: p.Missing, Remedy: p.Remedy, Error: p.Error}
	}
	return out, nil
}

var stateRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// maxRedirectURI is Entra's limit on a redirect URI's length.
const maxRedirectURI = 256

// checkRedirectURI accepts an absolute https URL, or http to localhost or
// 127.0.0.1 (Entra's exception for local development).
func checkRedirectURI(v *apperr.Violations, field, s string) {
	if s == "" {
		v.Add(field, "required: where Microsoft sends the administrator back (registered on the provisioner application)")
		return
	}
	if len(s) > maxRedirectURI {
		v.Add(field, "must be at most %d characters", maxRedirectURI)
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		v.Add(field, "must be an absolute URL such as https://app.example.com/consent/callback")
	case u.User != nil:
		v.Add(field, "must not contain user information")
	case u.Fragment != "" || strings.HasSuffix(s, "#"):
		v.Add(field, "must not contain a fragment")
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		v.Add(field, "must not contain white space")
	case u.Scheme == "https":
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1"):
	default:
		v.Add(field, "must be https (http only to localhost or 127.0.0.1)")
	}
}

// checkParam bounds a forwarded redirect parameter.
func checkParam(v *apperr.Violations, field, s string, max int) {
	switch {
	case len(s) > max:
		v.Add(field, "must be at most %d bytes", max)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		v.Add(field, "must be valid UTF-8 without control characters")
	}
}
