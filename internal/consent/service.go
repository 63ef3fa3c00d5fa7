package consent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// DefaultStateTTL is how long a link's state is valid.
const DefaultStateTTL = time.Hour

// StateLen is the length of a state: 32 random bytes, base64url without
// padding.
const StateLen = 43

// Cloud is what a consent link needs of one Microsoft cloud.
type Cloud struct {
	// Authority is the login authority URL, e.g. "https://login.microsoftonline.com/".
	Authority string
	// GraphAudience is the Graph resource; the link's scope is
	// GraphAudience + "/.default".
	GraphAudience string
}

// DefaultClouds returns the five clouds' login authorities and Graph
// audiences (shared/reference/microsoft.md section 7). China's admin
// consent goes to login.partner.microsoftonline.cn, the authority the China
// docs list for Microsoft Entra operated by 21Vianet
// (https://docs.azure.cn/entra/identity-platform/authentication-national-cloud);
// GCC (moderate) signs in and consents at the global authority.
func DefaultClouds() map[tenant.Cloud]Cloud {
	return map[tenant.Cloud]Cloud{
		tenant.CloudGlobal:       {Authority: "https://login.microsoftonline.com/", GraphAudience: "https://graph.microsoft.com"},
		tenant.CloudUSGovGCC:     {Authority: "https://login.microsoftonline.com/", GraphAudience: "https://graph.microsoft.com"},
		tenant.CloudUSGovGCCHigh: {Authority: "https://login.microsoftonline.us/", GraphAudience: "https://graph.microsoft.us"},
		tenant.CloudUSGovDoD:     {Authority: "https://login.microsoftonline.us/", GraphAudience: "https://dod-graph.microsoft.us"},
		tenant.CloudChina:        {Authority: "https://login.partner.microsoftonline.cn/", GraphAudience: "https://microsoftgraph.chinacloudapi.cn"},
	}
}

// Config configures a Service.
type Config struct {
	// Authorities overrides DefaultClouds' login authority per cloud slug
	// (the Microsoft endpoints configuration, so links can point at msftsim).
	Authorities map[string]string
	// GraphAudiences overrides DefaultClouds' Graph audience per cloud slug.
	GraphAudiences map[string]string
	// StateTTL defaults to DefaultStateTTL.
	StateTTL time.Duration
	// Grants, when set, reads the provisioner's own app role assignments
	// in a tenant right after its admin consent (CompleteAdminConsent
	// reports the missing ones).
	Grants GrantReader
	// Confirm, when set, asks Microsoft whether the provisioner really has
	// a service principal in the tenant before a consent is recorded
	// (the redirect's admin_consent=True alone could be forged by whoever
	// holds the link).
	Confirm Confirmer
	// ConfirmWait bounds how long a confirmation waits out replication
	// lag (a service principal made by the consent a moment ago);
	// defaults to DefaultConfirmWait.
	ConfirmWait time.Duration
}

// Service runs the provisioner and admin-consent use cases; it owns their
// transactions and audit events, and decides what they write.
type Service struct {
	tx      uow.Runner
	store   Store
	audit   audit.Appender
	secrets integration.SecretStore
	log     *slog.Logger
	clouds  map[tenant.Cloud]Cloud
	ttl     time.Duration
	grants  GrantReader
	confirm Confirmer
	wait    time.Duration
	quota   *quota.Enforcer
	now     func() time.Time
	random  func([]byte) (int, error)
}

// NewService returns a Service; it refuses an authority that is not an
// absolute https URL.
func NewService(cfg Config, tx uow.Runner, store Store, audit audit.Appender, secrets integration.SecretStore, log *slog.Logger) (*Service, error) {
	clouds := DefaultClouds()
	for slug, a := range cfg.Authorities {
		if a == "" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("consent: login authority %q of cloud %q must be an absolute https URL", a, slug)
		}
		c := clouds[tenant.Cloud(slug)]
		c.Authority = a
		clouds[tenant.Cloud(slug)] = c
	}
	for slug, aud := range cfg.GraphAudiences {
		if aud == "" {
			continue
		}
		c := clouds[tenant.Cloud(slug)]
		c.GraphAudience = aud
		clouds[tenant.Cloud(slug)] = c
	}
	ttl := cfg.StateTTL
	if ttl <= 0 {
		ttl = DefaultStateTTL
	}
	wait := cfg.ConfirmWait
	if wait <= 0 {
		wait = DefaultConfirmWait
	}
	return &Service{tx: tx, store: store, audit: audit, secrets: secrets, log: log, clouds: clouds, ttl: ttl, grants: cfg.Grants,
		confirm: cfg.Confirm, wait: wait,
		now: time.Now, random: rand.Read}, nil
}

// UseQuota holds creates to the organization's quota (internal/quota); nil
// (the default) admits everything.
func (s *Service) UseQuota(q *quota.Enforcer) { s.quota = q }

// SetProvisioner registers (or replaces) the organization's provisioner
// application.
//
// Write order, so that a crash at any point loses nothing and leaves the
// row pairing a client ID with that client's secret:
//  1. The secret's Vault path is recorded on the organization (when not
//     yet), so deleting the organization destroys whatever is written next.
//  2. The secret is written to Vault with check-and-set against the version
//     the row points at (on top of the latest when an earlier attempt got
//     this far and no further). A crash here leaves the row on the previous
//     client ID and secret version, which Vault keeps.
//  3. The row gets the client ID and the new version (and its audit event).
//     When the client ID changes, the tenants' consents (given to the
//     previous application) are cleared and its outstanding links dropped,
//     in the same transaction.
func (s *Service) SetProvisioner(ctx context.Context, org, clientID uuid.UUID, secret string) (organization.Organization, error) {
	path := ProvisionerSecretPath(org)
	cur, err := s.store.RecordProvisionerPath(ctx, s.tx.Conn(), org, path)
	if err != nil {
		return organization.Organization{}, err
	}
	version, err := s.secrets.PutClientSecret(ctx, path, secret, cur.ProvisionerSecretVersion)
	if apperr.Is(err, apperr.Aborted) {
		// Vault is ahead of the row: an earlier call stored a version and
		// then failed, or a concurrent call is storing one.
		var latest int64
		if latest, err = s.secrets.CurrentVersion(ctx, path); err == nil {
			version, err = s.secrets.PutClientSecret(ctx, path, secret, latest)
		}
	}
	if err != nil {
		return organization.Organization{}, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable),
			"storing the provisioner's client secret in Vault failed; nothing was changed (retry)")
	}
	return s.finishSetProvisioner(ctx, org, clientID, version)
}

// finishSetProvisioner is step 3 of SetProvisioner. A row already pointing
// at a version >= version (a concurrent call stored a newer secret) is left
// alone: Aborted.
func (s *Service) finishSetProvisioner(ctx context.Context, org, clientID uuid.UUID, version int64) (organization.Organization, error) {
	var out organization.Organization
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetOrganizationForUpdate(ctx, tx, org)
		if err != nil {
			return err
		}
		if cur.ProvisionerSecretVersion >= version {
			return apperr.New(apperr.Aborted,
				"a concurrent SetOrganizationProvisioner stored a newer provisioner secret; read the organization and retry if this one should win").
				WithReason("CONCURRENT_UPDATE")
		}
		if out, err = s.store.SetProvisioner(ctx, tx, org, clientID, version); err != nil {
			return err
		}
		if forgetsConsents(cur, clientID) {
			if err := s.forgetConsents(ctx, tx, org); err != nil {
				return err
			}
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.Org{Org: org}.String())
	})
	return out, err
}

// forgetsConsents reports whether registering clientID as the provisioner
// voids the tenants' consents: they were given to another application.
func forgetsConsents(cur organization.Organization, clientID uuid.UUID) bool {
	return cur.ProvisionerClientID != uuid.Nil && cur.ProvisionerClientID != clientID
}

// forgetConsents clears every tenant's consent (each with its audit event)
// and drops the outstanding links, which name the previous application.
func (s *Service) forgetConsents(ctx context.Context, tx uow.Tx, org uuid.UUID) error {
	if err := s.store.DeleteUnusedConsentRequests(ctx, tx, org); err != nil {
		return err
	}
	ids, err := s.store.ListConsentedTenants(ctx, tx, org)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := s.store.SetTenantConsentTime(ctx, tx, org, id, nil); err != nil {
			return err
		}
		if err := s.audit.AppendAudit(ctx, tx, org, resource.Tenant{Org: org, Tenant: id}.String()); err != nil {
			return err
		}
	}
	return nil
}

// AdminConsentLink issues a single-use admin-consent link for a tenant:
// the state is recorded (as its hash) before the link is returned.
func (s *Service) AdminConsentLink(ctx context.Context, org, tenantID uuid.UUID, redirectURI string) (Link, error) {
	t, err := s.store.GetTenant(ctx, s.tx.Conn(), org, tenantID)
	if err != nil {
		return Link{}, err
	}
	o, err := s.store.GetOrganization(ctx, s.tx.Conn(), org)
	if err != nil {
		return Link{}, err
	}
	if o.ProvisionerClientID == uuid.Nil {
		return Link{}, apperr.New(apperr.FailedPrecondition,
			"the organization has no provisioner application: an organization admin registers it first (SetOrganizationProvisioner)").
			WithReason("PROVISIONER_NOT_SET")
	}
	return s.issueLink(ctx, t, o.ProvisionerClientID, "", redirectURI)
}

// SharedAdminConsentLink issues a single-use admin-consent link for the
// organization's shared application of kind (client ID clientID) in a
// tenant. The state is bound to the organization, the tenant and the shared
// application: CompleteAdminConsent records the tenant's consent of that
// application, not of the provisioner (shared mode, docs/shared-mode.md).
func (s *Service) SharedAdminConsentLink(ctx context.Context, org, tenantID uuid.UUID, kind string, clientID uuid.UUID, redirectURI string) (Link, error) {
	t, err := s.store.GetTenant(ctx, s.tx.Conn(), org, tenantID)
	if err != nil {
		return Link{}, err
	}
	return s.issueLink(ctx, t, clientID, kind, redirectURI)
}

// SharedPlainLink is PlainLink for a shared application's client ID.
func (s *Service) SharedPlainLink(ctx context.Context, org, tenantID, clientID uuid.UUID) (string, error) {
	t, err := s.store.GetTenant(ctx, s.tx.Conn(), org, tenantID)
	if err != nil {
		return "", err
	}
	return s.plainLink(t, clientID)
}

// issueLink records a new state for t (and, when sharedKind is set, for the
// organization's shared application of that kind) and returns its link.
func (s *Service) issueLink(ctx context.Context, t tenant.Tenant, clientID uuid.UUID, sharedKind, redirectURI string) (Link, error) {
	org, tenantID := t.Org, t.ID
	state, err := s.newState()
	if err != nil {
		return Link{}, err
	}
	link, err := s.buildLink(t, clientID, redirectURI, state)
	if err != nil {
		return Link{}, err
	}
	now := s.now().UTC()
	r := Request{Org: org, Tenant: tenantID, StateHash: HashState(state), RedirectURI: redirectURI,
		CreateTime: now, ExpireTime: now.Add(s.ttl), SharedKind: sharedKind}
	err = s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.LockTenant(ctx, tx, org, tenantID); err != nil {
			return err
		}
		// Housekeeping: links of this tenant that expired unused a day ago
		// are dropped (used ones stay as the consent history).
		if err := s.store.DeleteExpiredConsentRequests(ctx, tx, org, tenantID, now.Add(-24*time.Hour)); err != nil {
			return err
		}
		if err := s.quota.Admit(ctx, tx, org, quota.ConsentLinks); err != nil {
			return err
		}
		if err := s.store.InsertConsentRequest(ctx, tx, r); err != nil {
			return err
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.Tenant{Org: org, Tenant: tenantID}.String())
	})
	if err != nil {
		return Link{}, err
	}
	return Link{URL: link, ExpireTime: r.ExpireTime}, nil
}

// PlainLink is the tenant's admin-consent link without a redirect URI or
// a state: nothing is recorded, and Microsoft sends the administrator to
// the provisioner's default redirect URI, so dzconnect does not learn of
// the answer by itself (an operator records it with CompleteAdminConsent,
// or uses AdminConsentLink instead). For error messages that must carry a
// link without writing anything.
func (s *Service) PlainLink(ctx context.Context, org, tenantID uuid.UUID) (string, error) {
	t, err := s.store.GetTenant(ctx, s.tx.Conn(), org, tenantID)
	if err != nil {
		return "", err
	}
	o, err := s.store.GetOrganization(ctx, s.tx.Conn(), org)
	if err != nil {
		return "", err
	}
	if o.ProvisionerClientID == uuid.Nil {
		return "", apperr.New(apperr.FailedPrecondition, "no admin-consent link: the organization has no provisioner")
	}
	return s.plainLink(t, o.ProvisionerClientID)
}

// plainLink formats {authority}/{entraTenantId}/v2.0/adminconsent?client_id=&scope=
// for the tenant's cloud.
func (s *Service) plainLink(t tenant.Tenant, clientID uuid.UUID) (string, error) {
	c, ok := s.clouds[t.Cloud]
	if !ok || c.Authority == "" || c.GraphAudience == "" {
		return "", apperr.New(apperr.FailedPrecondition, "no admin-consent link: the tenant's cloud %q is not configured", t.Cloud)
	}
	q := url.Values{}
	q.Set("client_id", clientID.String())
	q.Set("scope", strings.TrimSuffix(c.GraphAudience, "/")+"/.default")
	return strings.TrimSuffix(c.Authority, "/") + "/" + t.EntraTenantID.String() + "/v2.0/adminconsent?" + q.Encode(), nil
}

// newState returns 256 random bits, base64url without padding.
func (s *Service) newState() (string, error) {
	b := make([]byte, 32)
	if _, err := s.random(b); err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "generating the state")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// buildLink formats
// {authority}/{entraTenantId}/v2.0/adminconsent?client_id=&scope=&redirect_uri=&state=
// for the tenant's cloud.
func (s *Service) buildLink(t tenant.Tenant, clientID uuid.UUID, redirectURI, state string) (string, error) {
	c, ok := s.clouds[t.Cloud]
	if !ok || c.Authority == "" || c.GraphAudience == "" {
		return "", apperr.New(apperr.FailedPrecondition, "no login authority is configured for the tenant's cloud %q", t.Cloud).
			WithReason("CLOUD_NOT_CONFIGURED")
	}
	q := url.Values{}
	q.Set("client_id", clientID.String())
	q.Set("scope", strings.TrimSuffix(c.GraphAudience, "/")+"/.default")
	q.Set("redirect_uri", redirectURI)
	q.Set("state", state)
	return strings.TrimSuffix(c.Authority, "/") + "/" + t.EntraTenantID.String() + "/v2.0/adminconsent?" + q.Encode(), nil
}

// Completion is the outcome of CompleteAdminConsent.
type Completion struct {
	Tenant tenant.Tenant
	// Provisioner is the provisioner's permission check in the tenant
	// (nil for a shared application's link, or when no GrantReader is set).
	Provisioner *PermissionCheck
}

// CompleteAdminConsent records the redirect Microsoft sent after an
// administrator answered a link. The state is consumed in the same
// transaction as the outcome is recorded, whatever the outcome: an unknown,
// used or expired state, or a redirect URI other than the link's, is
// InvalidArgument (nothing written); a refusal or a tenant other than the
// link's is FailedPrecondition (recorded, the state is spent); otherwise
// the tenant's provisioner_consent_time is set, with the scope Microsoft
// returned recorded on the request. After a provisioner consent, the
// provisioner's own grants in the tenant are read (outside the
// transaction; a failure to read them is reported, not returned).
//
// Before a provisioner's consent is recorded, Microsoft confirms it
// (issue 11 item 12k: the forwarded admin_consent=True could be forged by
// whoever holds the link): the provisioner gets a token in the tenant,
// which Entra issues only to an application with a service principal there
// (AADSTS7000229 otherwise). Write order:
//  1. A read (nothing written): the state is usable, the redirect URI
//     is the link's, and the answer says consented.
//  2. Outside any transaction: the confirmation, waiting out replication
//     lag (a service principal the consent made a moment ago) for up to
//     ConfirmWait. Refused or unreachable: nothing is written and the
//     state stays usable until it expires, so the completion can be
//     retried (FailedPrecondition ADMIN_CONSENT_UNCONFIRMED, or
//     Unavailable).
//  3. One transaction: the checks of step 1 again under the row locks,
//     the state spent, the outcome recorded, the audit event.
func (s *Service) CompleteAdminConsent(ctx context.Context, org uuid.UUID, cb Callback) (Completion, error) {
	var (
		result Result
		t      tenant.Tenant
		shared bool
	)
	hash := HashState(cb.State)
	if err := s.confirmFirst(ctx, org, hash, cb); err != nil {
		return Completion{}, err
	}
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		r, tn, err := s.loadRequest(ctx, tx, org, hash, cb)
		if err != nil {
			return err
		}
		t = tn
		shared = r.SharedKind != ""
		result = decide(cb, t)
		if err := s.store.MarkConsentRequestUsed(ctx, tx, org, hash, result, clean(cb.Scope, 4096)); err != nil {
			return err
		}
		switch {
		case result == ResultConsented && r.SharedKind != "":
			// A shared application's link: the tenant consented that
			// application (shared mode), not the provisioner.
			if err := s.store.RecordSharedConsent(ctx, tx, org, r.Tenant, r.SharedKind, s.now()); err != nil {
				return err
			}
		case result == ResultConsented:
			now := s.now()
			if t, err = s.store.SetTenantConsentTime(ctx, tx, org, r.Tenant, &now); err != nil {
				return err
			}
		}
		return s.audit.AppendAudit(ctx, tx, org, resource.Tenant{Org: org, Tenant: r.Tenant}.String())
	})
	if apperr.Is(err, apperr.NotFound) {
		return Completion{}, apperr.Invalid("state", "is unknown: it was not issued by GetAdminConsentLink for this organization")
	}
	if err != nil {
		return Completion{}, err
	}
	switch result {
	case ResultDeclined:
		msg := "the tenant administrator did not grant admin consent"
		if cb.Error != "" {
			msg += ": Microsoft returned " + clean(cb.Error, 100)
			if d := clean(cb.ErrorDescription, 500); d != "" {
				msg += " (" + d + ")"
			}
		} else {
			msg += fmt.Sprintf(": admin_consent is %q, not \"True\"", clean(cb.AdminConsent, 20))
		}
		return Completion{}, apperr.New(apperr.FailedPrecondition, "%s; the link's state is spent, get a new link to try again", msg).
			WithReason("ADMIN_CONSENT_DECLINED")
	case ResultTenantMismatch:
		got := "no tenant"
		if id, err := uuid.Parse(cb.Tenant); err == nil {
			got = "tenant " + id.String()
		} else if cb.Tenant != "" {
			got = "a tenant that is not a GUID"
		}
		return Completion{}, apperr.New(apperr.FailedPrecondition,
			"admin consent came back from %s, but the link was issued for Entra tenant %s: nothing was recorded for the tenant; have an administrator of that tenant open a new link",
			got, t.EntraTenantID).WithReason("ADMIN_CONSENT_TENANT_MISMATCH")
	}
	out := Completion{Tenant: t}
	if !shared {
		out.Provisioner = s.checkProvisioner(ctx, org, t)
	}
	return out, nil
}

// loadRequest reads the request of a state and its tenant under their row
// locks and refuses, with nothing written, a state that is not usable or a
// redirect URI other than the link's.
func (s *Service) loadRequest(ctx context.Context, tx uow.Tx, org uuid.UUID, hash []byte, cb Callback) (Request, tenant.Tenant, error) {
	r, err := s.store.GetConsentRequestForUpdate(ctx, tx, org, hash)
	if err != nil {
		return Request{}, tenant.Tenant{}, err
	}
	t, err := s.store.GetTenantForUpdate(ctx, tx, org, r.Tenant)
	if err != nil {
		return Request{}, tenant.Tenant{}, err
	}
	if err := usable(r, s.now()); err != nil {
		return Request{}, tenant.Tenant{}, err // nothing written: the state stays as it is
	}
	if !sameRedirect(r.RedirectURI, cb.RedirectURI) {
		// Nothing written: the redirect did not come back where the link
		// sent it, so it is not this link's answer (the state stays
		// usable for the one that is).
		return Request{}, tenant.Tenant{}, apperr.Invalid("redirect_uri", "is not the redirect URI the link was issued with: give the URL the redirect arrived at")
	}
	return r, t, nil
}

// usable refuses a state that was spent or expired: each link works once,
// until it expires.
func usable(r Request, now time.Time) error {
	switch {
	case r.UsedTime != nil:
		return apperr.Invalid("state", "was already used (%s at %s): each admin-consent link works once; get a new link (GetAdminConsentLink)",
			r.Result, r.UsedTime.UTC().Format(time.RFC3339))
	case !now.Before(r.ExpireTime):
		return apperr.Invalid("state", "expired at %s: get a new link (GetAdminConsentLink)", r.ExpireTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// decide classifies a callback for the tenant its state was issued for.
// admin_consent is compared case-insensitively: Microsoft sends "True".
func decide(cb Callback, t tenant.Tenant) Result {
	if cb.Error != "" || !strings.EqualFold(cb.AdminConsent, "True") {
		return ResultDeclined
	}
	id, err := uuid.Parse(cb.Tenant)
	if err != nil || id != t.EntraTenantID {
		return ResultTenantMismatch
	}
	return ResultConsented
}

// clean makes caller-forwarded text safe to put in an error message: no
// control characters, at most n runes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return strings.TrimSpace(s)
}

// Credentials are the organization's provisioner credentials in one
// customer tenant.
type Credentials struct {
	Cloud    string // tenant.Cloud slug
	Org      string // the organization (keys Microsoft's throttle gate with the caller)
	TenantID string // Entra tenant ID
	ClientID string // the provisioner's application (client) ID
	Secret   string // never logged, never in an error
}

// String never shows the secret.
func (c Credentials) String() string {
	return fmt.Sprintf("{cloud=%s tenant=%s client=%s}", c.Cloud, c.TenantID, c.ClientID)
}

// GoString keeps %#v from printing the secret.
func (c Credentials) GoString() string { return "consent.Credentials" + c.String() }

// LogValue keeps slog from printing the secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cloud", c.Cloud), slog.String("tenant", c.TenantID), slog.String("client", c.ClientID))
}

// ForTenant returns the organization's provisioner
// credentials for a tenant whose administrator consented it (ok is false
// when no provisioner is registered or the tenant has not consented). The
// secret is read from Vault at the version the organization points at.
func (s *Service) ForTenant(ctx context.Context, org uuid.UUID, t tenant.Tenant) (Credentials, bool, error) {
	if t.ProvisionerConsentTime == nil {
		return Credentials{}, false, nil
	}
	return s.provisionerCredentials(ctx, org, t)
}

// provisionerCredentials returns the organization's provisioner
// credentials for t, consented there or not (ok is false when no
// provisioner is registered).
func (s *Service) provisionerCredentials(ctx context.Context, org uuid.UUID, t tenant.Tenant) (Credentials, bool, error) {
	o, err := s.store.GetOrganization(ctx, s.tx.Conn(), org)
	if err != nil {
		return Credentials{}, false, err
	}
	if o.ProvisionerClientID == uuid.Nil || o.ProvisionerSecretVersion == 0 {
		return Credentials{}, false, nil
	}
	secret, err := s.secrets.ReadClientSecret(ctx, o.ProvisionerSecretPath, o.ProvisionerSecretVersion)
	if err != nil {
		return Credentials{}, false, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable), "reading the provisioner's client secret from Vault failed")
	}
	return Credentials{Cloud: string(t.Cloud), Org: org.String(), TenantID: t.EntraTenantID.String(), ClientID: o.ProvisionerClientID.String(), Secret: secret}, true, nil
}
