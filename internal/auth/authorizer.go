package auth

import (
	"strings"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// Scope says who may call a method at all.
type Scope int

// The scopes.
const (
	// ScopeOrganization: keys of the organization named by the request
	// (with at least Rule.Role), and the service admin.
	ScopeOrganization Scope = iota
	// ScopeServiceAdmin: the service admin only.
	ScopeServiceAdmin
	// ScopeAuthenticated: any valid key.
	ScopeAuthenticated
)

// Rule is the policy of one RPC.
type Rule struct {
	Scope Scope
	Role  Role // minimum role, for ScopeOrganization
	// Consumer admits consumer keys too (ScopeOrganization). A consumer
	// key is refused (PermissionDenied) by every rule without it, even
	// ScopeAuthenticated ones.
	Consumer bool
}

// Target is the resource an RPC acts on: the request field holding it and
// its value (a resource name or parent).
type Target struct {
	Field string
	Name  string
}

// Authorize decides one call. A key of another organization gets NotFound,
// exactly as for a resource that does not exist, so existence never leaks;
// a key of the right organization with too small a role gets
// PermissionDenied.
func Authorize(p Principal, r Rule, t Target) error {
	if p.ServiceAdmin {
		return nil
	}
	if p.Role == RoleConsumer && (!r.Consumer || r.Scope != ScopeOrganization) {
		// Same organization check first: another organization's resource
		// is NotFound for every key.
		if r.Scope == ScopeOrganization {
			if org, err := OrgOf(t); err == nil && org != p.Org {
				return apperr.NotFoundf(t.Name)
			}
		}
		return apperr.New(apperr.PermissionDenied, "a consumer key may call only IssueAccessToken and AcknowledgeCredential").WithReason("CONSUMER_ONLY")
	}
	switch r.Scope {
	case ScopeAuthenticated:
		return nil
	case ScopeServiceAdmin:
		return apperr.New(apperr.PermissionDenied, "only the service admin may call this method").WithReason("SERVICE_ADMIN_ONLY")
	}
	org, err := OrgOf(t)
	if err != nil {
		return err
	}
	if org != p.Org {
		return apperr.NotFoundf(t.Name)
	}
	if p.Role == RoleConsumer {
		return nil // r.Consumer: checked above
	}
	if !p.Role.Allows(r.Role) {
		return apperr.New(apperr.PermissionDenied, "this method needs the %s role; the key has %s", r.Role, p.Role).WithReason("ROLE_TOO_LOW")
	}
	return nil
}

// OrgOf reads the organization ID that prefixes a resource name.
func OrgOf(t Target) (uuid.UUID, error) {
	if t.Name == "" {
		return uuid.Nil, apperr.Invalid(t.Field, "required")
	}
	rest, ok := strings.CutPrefix(t.Name, "organizations/")
	id, _, _ := strings.Cut(rest, "/")
	u, err := uuid.Parse(id)
	if !ok || err != nil || len(id) != 36 {
		return uuid.Nil, apperr.Invalid(t.Field, "must be a resource name starting with organizations/{organization}")
	}
	return u, nil
}
