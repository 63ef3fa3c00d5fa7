package consent

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

// GraphAppID is Microsoft Graph's application ID: the resource of the
// provisioner's permissions.
const GraphAppID = "00000003-0000-0000-c000-000000000000"

// Permission is one Microsoft Graph application permission the provisioner
// needs; any of AnyOf (the permission itself first, then the broader ones
// that include it) satisfies it.
type Permission struct {
	AnyOf []string
	For   string // what dzconnect does with it (docs/provisioner.md)
}

// Name is the permission's own value.
func (p Permission) Name() string { return p.AnyOf[0] }

// ProvisionerPermissions are the Graph application permissions the
// provisioner needs in a customer tenant (docs/provisioner.md,
// docs/provisioning.md "The provisioner's permissions"). The opt-in
// RoleManagement.ReadWrite.Directory (directory role for Exchange) is not
// required.
var ProvisionerPermissions = []Permission{
	{AnyOf: []string{"Application.ReadWrite.OwnedBy", "Application.ReadWrite.All"},
		For: "create the integration's application and service principal, add and remove its secrets and certificates, delete them"},
	{AnyOf: []string{"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
		For: "read resource service principals and app role assignments (the grants checks compare with the catalog)"},
	{AnyOf: []string{"AppRoleAssignment.ReadWrite.All"},
		For: "grant the integration's application permissions (admin consent)"},
	{AnyOf: []string{"Policy.Read.All"},
		For: "read the tenant's app management policy to fit secret lifetimes"},
}

// Grant is one application permission granted to a service principal.
type Grant struct {
	ResourceAppID string // the resource API's application ID
	Value         string // the app role's value, e.g. "Policy.Read.All"
}

// GrantReader reads the app role assignments of clientID's service
// principal in the tenant of c, with the credentials c (the provisioner's
// own). Errors are *mserr.Error. Implemented by internal/microsoft.
type GrantReader interface {
	AppRoleGrants(ctx context.Context, c Credentials, clientID string) ([]Grant, error)
}

// PermissionCheck is what the provisioner holds in one tenant.
type PermissionCheck struct {
	Granted []string // Graph application permissions granted, sorted
	Missing []string // required permissions none of whose alternatives is granted
	Remedy  string   // for Missing; empty when nothing is missing
	Error   string   // why the grants could not be read (Granted and Missing then empty)
}

// missingPermissions compares the provisioner's grants with
// ProvisionerPermissions: the Graph values granted (sorted) and the
// required ones not satisfied (in ProvisionerPermissions order).
func missingPermissions(grants []Grant) (granted, missing []string) {
	for _, g := range grants {
		if strings.EqualFold(g.ResourceAppID, GraphAppID) && !slices.Contains(granted, g.Value) {
			granted = append(granted, g.Value)
		}
	}
	slices.Sort(granted)
	for _, p := range ProvisionerPermissions {
		if !slices.ContainsFunc(p.AnyOf, func(v string) bool { return slices.Contains(granted, v) }) {
			missing = append(missing, p.Name())
		}
	}
	return granted, missing
}

// remedyMissing tells a customer administrator how to grant the missing
// permissions.
func remedyMissing(missing []string) string {
	if len(missing) == 0 {
		return ""
	}
	return "The provisioner application lacks the Microsoft Graph application permission(s) " + strings.Join(missing, ", ") +
		" in this tenant: the organization adds them to the provisioner's API permissions (App registrations > the provisioner > " +
		"API permissions, in its home tenant), then a customer administrator opens a new admin-consent link (GetAdminConsentLink) " +
		"to grant them. Until then provisioning and permission reads fail in this tenant."
}

// checkTimeout bounds the read of the provisioner's grants after a consent.
const checkTimeout = 15 * time.Second

// checkProvisioner reads the provisioner's grants in t. It never fails:
// what it cannot read is reported in Error.
func (s *Service) checkProvisioner(ctx context.Context, org uuid.UUID, t tenant.Tenant) *PermissionCheck {
	if s.grants == nil {
		return nil
	}
	creds, ok, err := s.ForTenant(ctx, org, t)
	if err != nil || !ok {
		msg := "the provisioner's credentials could not be read"
		if err != nil {
			msg += ": " + err.Error()
		}
		return &PermissionCheck{Error: msg}
	}
	// Bounded: the consent is recorded already, and a throttled tenant
	// must not hold the caller for Microsoft's whole Retry-After.
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	grants, err := s.grants.AppRoleGrants(ctx, creds, creds.ClientID)
	if err != nil {
		out := &PermissionCheck{Error: "reading the provisioner's app role assignments failed"}
		var me *mserr.Error
		if errors.As(err, &me) {
			out.Error += " (" + me.Code + ": " + me.Message + ")"
			if me.Class == mserr.ClassPermissionMissing {
				// Reading them is what Application.Read.All is for.
				out.Missing = []string{"Application.Read.All"}
				out.Remedy = remedyMissing(out.Missing)
			} else {
				out.Remedy = me.Remedy
			}
		}
		s.log.WarnContext(ctx, "provisioner permissions not read", "tenant", t.ID, "error", err)
		return out
	}
	granted, missing := missingPermissions(grants)
	return &PermissionCheck{Granted: granted, Missing: missing, Remedy: remedyMissing(missing)}
}

// microsoftParams are the parameters Microsoft adds to the redirect URI.
var microsoftParams = []string{"admin_consent", "tenant", "scope", "state", "error", "error_description", "error_subcode",
	"error_uri", "error_codes", "trace_id", "correlation_id", "timestamp"}

// sameRedirect reports whether got (the URL a redirect arrived at, with or
// without Microsoft's parameters) is the redirect URI issued with a link:
// same scheme and host (case-insensitive), same path, and the same query
// once Microsoft's parameters are removed.
func sameRedirect(issued, got string) bool {
	a, err1 := url.Parse(issued)
	b, err2 := url.Parse(got)
	if err1 != nil || err2 != nil || got == "" {
		return false
	}
	if !strings.EqualFold(a.Scheme, b.Scheme) || !strings.EqualFold(a.Host, b.Host) || a.EscapedPath() != b.EscapedPath() {
		return false
	}
	qa, qb := a.Query(), b.Query()
	for _, p := range microsoftParams {
		qa.Del(p)
		qb.Del(p)
	}
	return qa.Encode() == qb.Encode()
}
