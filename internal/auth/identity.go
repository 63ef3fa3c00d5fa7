package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// IdentityConfig is how workload identities become principals: OIDC
// issuers whose JWTs are accepted as bearer tokens, and client-certificate
// identities (mutual TLS) mapped to an organization and role. It is the
// JSON of --auth-config-file, plus the --oidc-* flags (docs/authentication.md).
type IdentityConfig struct {
	Issuers      []IssuerConfig `json:"issuers"`
	Certificates []Mapping      `json:"certificates"`
}

// IssuerConfig is one trusted OIDC issuer.
type IssuerConfig struct {
	// Issuer is the issuer URL (https); discovery is read from
	// Issuer + "/.well-known/openid-configuration", and tokens' iss must
	// equal it exactly.
	Issuer string `json:"issuer"`
	// Audience must be among a token's aud.
	Audience string `json:"audience"`
	// CAFile is a PEM bundle trusted for discovery and JWKS in addition to
	// the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// OrgClaim and RoleClaim name the claims holding the organization (ID
	// or organizations/{id}) and the role; defaults dzconnect_org and
	// dzconnect_role. Subjects are looked up first.
	OrgClaim  string `json:"org_claim,omitempty"`
	RoleClaim string `json:"role_claim,omitempty"`
	// Roles the role claim may grant (default: admin, operator, viewer,
	// consumer). A token claiming another role is refused.
	Roles []Role `json:"roles,omitempty"`
	// Subjects maps a token's sub to an organization and role, whatever
	// its claims say.
	Subjects []Mapping `json:"subjects,omitempty"`
	// DisableClaims accepts only the subjects listed (the issuer's org and
	// role claims are ignored): for issuers whose claims dzconnect's
	// operators do not control.
	DisableClaims bool `json:"disable_claims,omitempty"`
}

// Mapping grants an identity (a token subject, or a client certificate's
// URI SAN such as a SPIFFE ID, or its subject common name) an organization
// and role, or the service admin.
type Mapping struct {
	Subject      string `json:"subject,omitempty"`  // issuers' subjects
	Identity     string `json:"identity,omitempty"` // certificates: a URI SAN or the subject CN
	Organization string `json:"organization,omitempty"`
	Role         Role   `json:"role,omitempty"`
	ServiceAdmin bool   `json:"service_admin,omitempty"`
}

// grant is what a mapping or the claims give.
type grant struct {
	serviceAdmin bool
	org          uuid.UUID
	role         Role
}

// Defaults of the claim names.
const (
	DefaultOrgClaim  = "dzconnect_org"
	DefaultRoleClaim = "dzconnect_role"
)

var allRoles = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleConsumer}

// LoadIdentityConfig reads an --auth-config-file (unknown fields refused).
func LoadIdentityConfig(path string) (IdentityConfig, error) {
	var c IdentityConfig
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("--auth-config-file: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("--auth-config-file %s: %w", path, err)
	}
	return c, nil
}

// parseOrg reads an organization ID or organizations/{id}.
func parseOrg(s string) (uuid.UUID, error) {
	id := strings.TrimPrefix(s, "organizations/")
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return uuid.Nil, errors.New("must be an organization ID or organizations/{id}")
	}
	return u, nil
}

func validRole(r Role) bool { return r.rank() > 0 || r == RoleConsumer }

func (m Mapping) grant() (grant, error) {
	if m.ServiceAdmin {
		if m.Organization != "" || m.Role != "" {
			return grant{}, errors.New("service_admin excludes organization and role")
		}
		return grant{serviceAdmin: true, role: RoleAdmin}, nil
	}
	org, err := parseOrg(m.Organization)
	if err != nil {
		return grant{}, fmt.Errorf("organization: %w", err)
	}
	if !validRole(m.Role) {
		return grant{}, errors.New("role: must be admin, operator, viewer or consumer")
	}
	return grant{org: org, role: m.Role}, nil
}

// normalize fills defaults and checks the whole configuration, naming
// each problem's place.
func (c *IdentityConfig) normalize() error {
	var errs []error
	seen := map[string]bool{}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		at := fmt.Sprintf("issuers[%d]", i)
		if u, err := url.Parse(is.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.issuer: must be an https URL", at))
		}
		if seen[is.Issuer] {
			errs = append(errs, fmt.Errorf("%s.issuer: %s is configured twice", at, is.Issuer))
		}
		seen[is.Issuer] = true
		if is.Audience == "" {
			errs = append(errs, fmt.Errorf("%s.audience: required", at))
		}
		if is.OrgClaim == "" {
			is.OrgClaim = DefaultOrgClaim
		}
		if is.RoleClaim == "" {
			is.RoleClaim = DefaultRoleClaim
		}
		if len(is.Roles) == 0 {
			is.Roles = allRoles
		}
		for j, r := range is.Roles {
			if !validRole(r) {
				errs = append(errs, fmt.Errorf("%s.roles[%d]: must be admin, operator, viewer or consumer", at, j))
			}
		}
		for j, m := range is.Subjects {
			if m.Subject == "" || m.Identity != "" {
				errs = append(errs, fmt.Errorf("%s.subjects[%d]: set subject (not identity)", at, j))
			}
			if _, err := m.grant(); err != nil {
				errs = append(errs, fmt.Errorf("%s.subjects[%d]: %w", at, j, err))
			}
		}
	}
	for j, m := range c.Certificates {
		if m.Identity == "" || m.Subject != "" || !utf8.ValidString(m.Identity) {
			errs = append(errs, fmt.Errorf("certificates[%d]: set identity (a URI SAN such as spiffe://... or the subject CN), not subject", j))
		}
		if _, err := m.grant(); err != nil {
			errs = append(errs, fmt.Errorf("certificates[%d]: %w", j, err))
		}
	}
	return errors.Join(errs...)
}
