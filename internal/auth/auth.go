// Package auth authenticates API callers and authorizes every RPC.
//
// Callers present an API key ("authorization: Bearer dzk_..."), a JWT of a
// configured OIDC issuer ("authorization: Bearer eyJ..."; Identities), or
// with mutual TLS and no authorization header, a client certificate whose
// identity the configuration maps (docs/authentication.md). Keys belong
// to one organization and carry a role (admin ⊇ operator ⊇ viewer, and
// consumer, outside that chain: IssueAccessToken and AcknowledgeCredential
// only, where a method's Rule admits it); the
// bootstrap service-admin key comes from configuration and manages
// organizations. Keys are 256-bit random values stored only as SHA-256
// hashes; the plaintext is shown once at creation.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Role is what a key may do within its organization.
type Role string

// The roles, from most to least privileged.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
	// RoleConsumer is outside the chain: it may call only the methods
	// whose Rule admits consumers (IssueAccessToken, AcknowledgeCredential:
	// platforms that use integrations without holding their secrets), and
	// no other method, reads included.
	RoleConsumer Role = "consumer"
)

func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleOperator:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Allows reports whether r includes need (consumer includes nothing: it is
// admitted by Rule.Consumer only).
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() && need.rank() > 0 }

// ServiceAdminActor is the audit actor of the bootstrap key.
const ServiceAdminActor = "service-admin"

// Principal is an authenticated caller.
type Principal struct {
	ServiceAdmin bool
	Org          uuid.UUID
	Key          uuid.UUID // the API key; nil for a workload identity
	Role         Role
	// Subject names a workload identity: "oidc:<issuer>#<sub>" or
	// "cert:<identity>"; empty for API keys.
	Subject string
}

// Actor names the principal in audit events.
func (p Principal) Actor() string {
	switch {
	case p.Subject != "":
		return p.Subject
	case p.ServiceAdmin:
		return ServiceAdminActor
	}
	return resource.APIKey{Org: p.Org, Key: p.Key}.String()
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// APIKey is a stored key: metadata and the hash, never the key.
type APIKey struct {
	Org         uuid.UUID
	ID          uuid.UUID
	DisplayName string
	Role        Role
	KeyPrefix   string
	Hash        []byte
	ExpireTime  *time.Time
	CreateTime  time.Time
	UpdateTime  time.Time
	Version     int64
}

// Store persists API keys. Every method runs in the caller's unit of work
// and is scoped by organization (but LookupAPIKey); none opens a
// transaction.
type Store interface {
	// LockOrganization keeps org from being deleted until tx ends
	// (NotFound when it does not exist).
	LockOrganization(ctx context.Context, tx uow.Tx, org uuid.UUID) error
	InsertAPIKey(ctx context.Context, tx uow.Tx, k APIKey) (APIKey, error)
	GetAPIKey(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (APIKey, error)
	// GetAPIKeyForUpdate reads and row-locks a key until tx ends.
	GetAPIKeyForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (APIKey, error)
	ListAPIKeys(ctx context.Context, tx uow.Tx, org uuid.UUID, p page.Request) ([]APIKey, error)
	// UpdateAPIKey writes k's display name and bumps its version.
	UpdateAPIKey(ctx context.Context, tx uow.Tx, k APIKey) (APIKey, error)
	DeleteAPIKey(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error
	// LookupAPIKey finds a key by hash across organizations: the one
	// unscoped query, since it is how the caller's organization is learnt.
	LookupAPIKey(ctx context.Context, tx uow.Tx, hash []byte) (APIKey, error)
}

// KeyPrefix starts every dzconnect API key.
const KeyPrefix = "dzk_"

// NewKey returns a fresh key, its display prefix and its hash.
func NewKey() (secret, prefix string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	secret = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, secret[:len(KeyPrefix)+8], HashKey(secret)
}

// HashKey hashes a presented key.
func HashKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Authenticator turns a bearer key, token or client certificate into a
// Principal.
type Authenticator struct {
	tx         uow.Runner
	store      Store
	adminHash  []byte // empty: no service-admin key configured
	now        func() time.Time
	identities *Identities // nil: API keys only
	cache      *KeyCache   // nil: every call looks its key up
}

// UseKeyCache caches authenticated keys (KeyCache; nil: none). The cache
// serves entries only while its invalidation listener says it is live.
func (a *Authenticator) UseKeyCache(c *KeyCache) { a.cache = c }

// UseIdentities accepts OIDC tokens and mapped client certificates too.
func (a *Authenticator) UseIdentities(id *Identities) { a.identities = id }

// NewAuthenticator returns an authenticator; adminKey may be empty.
func NewAuthenticator(tx uow.Runner, store Store, adminKey string) *Authenticator {
	a := &Authenticator{tx: tx, store: store, now: time.Now}
	if adminKey != "" {
		a.adminHash = HashKey(adminKey)
	}
	return a
}

var errBadKey = apperr.New(apperr.Unauthenticated, "missing, unknown, expired or revoked API key").WithReason("INVALID_API_KEY")

// Authenticate checks the value of an authorization header.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		secret, ok = strings.CutPrefix(header, "bearer ")
	}
	if ok && a.identities != nil && len(a.identities.issuers) > 0 && looksLikeJWT(secret) {
		return a.identities.VerifyToken(ctx, secret)
	}
	if !ok || !strings.HasPrefix(secret, KeyPrefix) || len(secret) > 128 {
		return Principal{}, errBadKey
	}
	h := HashKey(secret)
	if len(a.adminHash) > 0 && subtle.ConstantTimeCompare(h, a.adminHash) == 1 {
		return Principal{ServiceAdmin: true, Role: RoleAdmin}, nil
	}
	k, err := a.lookup(ctx, h)
	if err != nil {
		return Principal{}, err
	}
	// Expiry is enforced on every call, cached or not.
	if k.ExpireTime != nil && !a.now().Before(*k.ExpireTime) {
		return Principal{}, errBadKey
	}
	return Principal{Org: k.Org, Key: k.ID, Role: k.Role}, nil
}

// lookup finds the key with hash h: in the cache, else in Postgres (and
// caches what it found; a refusal is never cached). Nothing is written per
// call: keys have no last-used time.
func (a *Authenticator) lookup(ctx context.Context, h []byte) (APIKey, error) {
	var hash [32]byte
	copy(hash[:], h)
	var epoch uint64
	if a.cache != nil {
		if k, ok := a.cache.get(hash); ok {
			return k, nil
		}
		epoch = a.cache.begin()
	}
	k, err := a.store.LookupAPIKey(ctx, a.tx.Conn(), h)
	if apperr.Is(err, apperr.NotFound) {
		return APIKey{}, errBadKey
	}
	if err != nil {
		return APIKey{}, err
	}
	if a.cache != nil {
		a.cache.put(hash, k, epoch)
	}
	return k, nil
}

// AuthenticateCertificate maps the identities of a verified client
// certificate (its URI SANs, then its subject CN; CertificateIdentities)
// to a principal: the first one the configuration names. A caller
// without an authorization header is authenticated this way.
func (a *Authenticator) AuthenticateCertificate(ids []string) (Principal, error) {
	if a.identities != nil {
		for _, id := range ids {
			if g, ok := a.identities.certs[id]; ok {
				return Principal{ServiceAdmin: g.serviceAdmin, Org: g.org, Role: g.role, Subject: "cert:" + id}, nil
			}
		}
	}
	return Principal{}, errBadKey
}
