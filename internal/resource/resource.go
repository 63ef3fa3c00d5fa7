// Package resource parses and formats dzconnect's AIP resource names:
//
//	organizations/{organization}
//	organizations/{organization}/apiKeys/{api_key}
//	organizations/{organization}/auditEvents/{audit_event}
//	organizations/{organization}/tenants/{tenant}
//	organizations/{organization}/tenants/{tenant}/integrations/{integration}
//
// Every ID is a server-assigned UUID. A malformed name is an InvalidArgument
// naming the request field; a well-formed name of a missing resource is the
// store's NotFound.
package resource

import (
	"strings"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// Wildcard stands for "every tenant" in a list parent (AIP-159).
const Wildcard = "-"

// Org names an organization.
type Org struct{ Org uuid.UUID }

// APIKey names an API key.
type APIKey struct{ Org, Key uuid.UUID }

// Tenant names a tenant.
type Tenant struct{ Org, Tenant uuid.UUID }

// Integration names an integration.
type Integration struct{ Org, Tenant, Integration uuid.UUID }

// TenantParent is a list parent for integrations: one tenant, or all
// tenants of the organization when AllTenants is set.
type TenantParent struct {
	Org        uuid.UUID
	Tenant     uuid.UUID
	AllTenants bool
}

func (n Org) String() string    { return "organizations/" + n.Org.String() }
func (n APIKey) String() string { return Org{n.Org}.String() + "/apiKeys/" + n.Key.String() }
func (n Tenant) String() string { return Org{n.Org}.String() + "/tenants/" + n.Tenant.String() }
func (n Integration) String() string {
	return Tenant{n.Org, n.Tenant}.String() + "/integrations/" + n.Integration.String()
}

// AuditEventName formats an audit event's name.
func AuditEventName(org uuid.UUID, id int64) string {
	return Org{org}.String() + "/auditEvents/" + itoa(id)
}

func itoa(v int64) string {
	var b [20]byte
	i := len(b)
	if v == 0 {
		return "0"
	}
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// split matches name against collection keywords, returning the IDs.
func split(name string, collections ...string) ([]string, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 2*len(collections) {
		return nil, false
	}
	ids := make([]string, 0, len(collections))
	for i, c := range collections {
		if parts[2*i] != c || parts[2*i+1] == "" {
			return nil, false
		}
		ids = append(ids, parts[2*i+1])
	}
	return ids, true
}

func parseIDs(field, name, pattern string, ids []string, ok bool, wildcardLast bool) ([]uuid.UUID, error) {
	if name == "" {
		return nil, apperr.Invalid(field, "required")
	}
	if !ok {
		return nil, apperr.Invalid(field, "must have the form %s", pattern)
	}
	out := make([]uuid.UUID, len(ids))
	for i, s := range ids {
		if wildcardLast && i == len(ids)-1 && s == Wildcard {
			continue
		}
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return nil, apperr.Invalid(field, "must have the form %s, with UUIDs as IDs", pattern)
		}
		out[i] = id
	}
	return out, nil
}

// ParseOrg parses organizations/{organization}; field names the request field.
func ParseOrg(field, name string) (Org, error) {
	ids, ok := split(name, "organizations")
	u, err := parseIDs(field, name, "organizations/{organization}", ids, ok, false)
	if err != nil {
		return Org{}, err
	}
	return Org{u[0]}, nil
}

// ParseAPIKey parses organizations/{organization}/apiKeys/{api_key}.
func ParseAPIKey(field, name string) (APIKey, error) {
	ids, ok := split(name, "organizations", "apiKeys")
	u, err := parseIDs(field, name, "organizations/{organization}/apiKeys/{api_key}", ids, ok, false)
	if err != nil {
		return APIKey{}, err
	}
	return APIKey{u[0], u[1]}, nil
}

// ParseTenant parses organizations/{organization}/tenants/{tenant}.
func ParseTenant(field, name string) (Tenant, error) {
	ids, ok := split(name, "organizations", "tenants")
	u, err := parseIDs(field, name, "organizations/{organization}/tenants/{tenant}", ids, ok, false)
	if err != nil {
		return Tenant{}, err
	}
	return Tenant{u[0], u[1]}, nil
}

// ParseTenantParent parses organizations/{organization}/tenants/{tenant},
// where {tenant} may be "-".
func ParseTenantParent(field, name string) (TenantParent, error) {
	ids, ok := split(name, "organizations", "tenants")
	u, err := parseIDs(field, name, "organizations/{organization}/tenants/{tenant} (tenant may be -)", ids, ok, true)
	if err != nil {
		return TenantParent{}, err
	}
	return TenantParent{Org: u[0], Tenant: u[1], AllTenants: ids[1] == Wildcard}, nil
}

// ParseIntegration parses
// organizations/{organization}/tenants/{tenant}/integrations/{integration}.
func ParseIntegration(field, name string) (Integration, error) {
	ids, ok := split(name, "organizations", "tenants", "integrations")
	u, err := parseIDs(field, name, "organizations/{organization}/tenants/{tenant}/integrations/{integration}", ids, ok, false)
	if err != nil {
		return Integration{}, err
	}
	return Integration{u[0], u[1], u[2]}, nil
}
