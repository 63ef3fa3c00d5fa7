// Package provision provisions integrations: the manual setup guide as an
// operation (kind "provision") whose steps call Microsoft Graph and Azure
// Resource Manager in a customer tenant with the organization's consented
// provisioner (docs/provisioning.md). The use case (Service.Start) creates
// the integration row and starts the operation in one transaction; the
// steps (steps.go) are each idempotent under re-run.
package provision

import (
	"crypto/sha1" //nolint:gosec // SHA-1 is the certificate thumbprint Entra uses, not a security measure
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

// KindName is the operation kind that provisions an integration.
const KindName = "provision"

// DefaultDisplayName is the application's display name when none is given.
const DefaultDisplayName = "Dropzone AI"

// MaxSecretLifetime is the longest client secret dzconnect asks for: 2
// years, addPassword's default and the portal's cap.
const MaxSecretLifetime = 730 * 24 * time.Hour

// skew is taken off a fitted lifetime so that clock differences with Entra
// never push the end past a policy's maximum.
const skew = 10 * time.Minute

// Role is the Azure role a Sentinel integration gets.
type Role string

// The roles, with their built-in role definition GUIDs.
const (
	RoleReader    Role = "reader"
	RoleResponder Role = "responder"
)

// RoleDefinitions are the built-in Azure role GUIDs of the roles.
var RoleDefinitions = map[Role]struct{ ID, Name string }{
	RoleReader:    {"8d289c81-5878-46d4-8554-54e1e3d8b5cb", "Microsoft Sentinel Reader"},
	RoleResponder: {"3e150937-b8fe-4cfb-8069-0eaf05ecd056", "Microsoft Sentinel Responder"},
}

// Workspace locates a Sentinel workspace.
type Workspace struct {
	SubscriptionID uuid.UUID `json:"subscription_id"`
	ResourceGroup  string    `json:"resource_group"`
	Name           string    `json:"name"`
}

// Scope is the resource group's ARM scope, where the Sentinel role is
// assigned (Microsoft's recommendation; docs/provisioning.md step g).
func (w Workspace) Scope() string {
	return "/subscriptions/" + w.SubscriptionID.String() + "/resourceGroups/" + w.ResourceGroup
}

// ID is the workspace's ARM ID.
func (w Workspace) ID() string {
	return w.Scope() + "/providers/Microsoft.OperationalInsights/workspaces/" + w.Name
}

var workspaceIDRE = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.OperationalInsights/workspaces/([^/]+)/?$`)

// ParseWorkspaceID parses a workspace's ARM ID.
func ParseWorkspaceID(s string) (Workspace, error) {
	m := workspaceIDRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Workspace{}, fmt.Errorf("must be /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.OperationalInsights/workspaces/{name}")
	}
	sub, err := uuid.Parse(m[1])
	if err != nil {
		return Workspace{}, fmt.Errorf("the subscription %q is not a GUID", m[1])
	}
	return Workspace{SubscriptionID: sub, ResourceGroup: m[2], Name: m[3]}, nil
}

// Spec is what to provision.
type Spec struct {
	Kind           integration.Kind
	Features       []integration.Feature
	DisplayName    string        // default DefaultDisplayName
	SecretLifetime time.Duration // 0: the longest the policy allows, at most MaxSecretLifetime
	CertificatePEM string        // optional public certificate
	Workspace      *Workspace    // Sentinel only
	Role           Role          // Sentinel only; default reader
}

// Params are the operation's parameters: the spec with its defaults, and
// the integration it provisions. Never secrets (the certificate is public).
type Params struct {
	Integration           uuid.UUID             `json:"integration"`
	Tenant                uuid.UUID             `json:"tenant"`
	Kind                  integration.Kind      `json:"kind"`
	Features              []integration.Feature `json:"features,omitempty"`
	DisplayName           string                `json:"display_name"`
	SecretLifetimeSeconds int64                 `json:"secret_lifetime_seconds,omitempty"`
	CertificatePEM        string                `json:"certificate_pem,omitempty"`
	Workspace             *Workspace            `json:"workspace,omitempty"`
	Role                  Role                  `json:"role,omitempty"`
	UniqueName            string                `json:"unique_name"`
}

// UniqueName is the application's stable key in the tenant (its
// uniqueName, immutable once set): derived from the organization, the
// Entra tenant and the kind, and a generation that deprovisioning will
// bump (a soft-deleted application may keep its name for 30 days). Short,
// lower-case [a-z0-9-], as the undocumented limits advise.
func UniqueName(org, entraTenant uuid.UUID, kind integration.Kind, generation int) string {
	h := sha256.Sum256([]byte(org.String() + "|" + entraTenant.String() + "|" + string(kind)))
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:]))[:20]
	short := "defender"
	if kind == integration.KindSentinel {
		short = "sentinel"
	}
	return "dzconnect-" + short + "-" + enc + "-g" + strconv.Itoa(generation)
}

// PasswordTag is the display name of the client secret an operation adds:
// how a re-run recognises the secrets of an earlier attempt.
func PasswordTag(op uuid.UUID) string { return passwordTagPrefix + op.String() }

// CredentialID is the credential row (and Vault path) of the client secret
// an operation adds: the same for every attempt of the operation.
func CredentialID(op uuid.UUID) uuid.UUID { return uuid.NewSHA1(op, []byte("client-secret")) }

// FitLifetime returns the secret lifetime to ask for: the requested one
// (or MaxSecretLifetime), at most the policy's maximum (an ISO 8601
// duration, "" when none), less a margin for clock skew when the policy
// caps it. ok is false when the policy's maximum cannot be read.
func FitLifetime(requested time.Duration, policyMax string) (time.Duration, error) {
	life := requested
	if life <= 0 || life > MaxSecretLifetime {
		life = MaxSecretLifetime
	}
	if policyMax == "" {
		return life, nil
	}
	max, err := ParseISODuration(policyMax)
	if err != nil {
		return 0, err
	}
	if max-skew < life {
		life = max - skew
	}
	if life <= 0 {
		return 0, fmt.Errorf("the policy's maximum lifetime %s is too short", policyMax)
	}
	return life, nil
}

var isoRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// ParseISODuration reads an ISO 8601 duration with years as 365 days and
// months as 30 days (how Entra counts them is not documented; this rounds
// down for both).
func ParseISODuration(s string) (time.Duration, error) {
	m := isoRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute}
	var d time.Duration
	for i, u := range units {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, err
			}
			d += time.Duration(n) * u
		}
	}
	if m[7] != "" {
		f, err := strconv.ParseFloat(m[7], 64)
		if err != nil {
			return 0, err
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, nil
}

// Certificate is a parsed public certificate.
type Certificate struct {
	DER        []byte
	Thumbprint string // SHA-1, upper-case hex, as Entra shows it
	Subject    string
	NotBefore  time.Time
	NotAfter   time.Time
}

// ParseCertificatePEM parses one PEM certificate (public part only).
func ParseCertificatePEM(s string) (Certificate, error) {
	b, rest := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return Certificate{}, fmt.Errorf("must be one PEM block of type CERTIFICATE (the public certificate, never a private key)")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return Certificate{}, fmt.Errorf("must hold exactly one certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return Certificate{}, fmt.Errorf("is not a valid X.509 certificate")
	}
	sum := sha1.Sum(c.Raw) //nolint:gosec // the thumbprint Entra uses
	return Certificate{DER: c.Raw, Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])), Subject: c.Subject.String(),
		NotBefore: c.NotBefore, NotAfter: c.NotAfter}, nil
}

// features returns the requested features, never nil (catalog.For reads
// nil as "every feature").
func (p Params) features() []integration.Feature {
	if p.Features == nil {
		return []integration.Feature{}
	}
	return p.Features
}
