package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// Token verification limits.
const (
	maxTokenBytes    = 16 << 10
	maxSubjectBytes  = 255
	discoveryBackoff = 5 * time.Second  // after a failed discovery, the next try waits this long
	keysMaxAge       = time.Hour        // cached JWKS older than this is refreshed before use
	keysRetry        = 30 * time.Second // after a failed refresh of old keys, the next try
	keysRefillEvery  = 10 * time.Second // unknown-kid refreshes: one token per this, ...
	keysBurst        = 5                // ... up to this many at once
	issuerTimeout    = 10 * time.Second // one discovery or JWKS request
)

// signingAlgs are the only algorithms accepted: asymmetric ones. "none"
// and the HMAC family (whose key a verifier would have to share) are
// refused before any key is looked at.
var signingAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// errBadToken is every refusal of a bearer token: which check failed is
// logged, never told the caller.
var errBadToken = apperr.New(apperr.Unauthenticated, "invalid, expired or unrecognized bearer token").WithReason("INVALID_TOKEN")

// Identities verifies workload identities: JWTs of the configured OIDC
// issuers and client certificates named in the configuration.
type Identities struct {
	log     *slog.Logger
	issuers map[string]*issuer
	certs   map[string]grant
	now     func() time.Time
}

// NewIdentities checks cfg and prepares its issuers; no issuer is
// contacted until a token of it arrives (an issuer down at start-up does
// not stop dzconnect; its tokens are refused Unavailable meanwhile).
func NewIdentities(cfg IdentityConfig, log *slog.Logger) (*Identities, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	id := &Identities{log: log, issuers: map[string]*issuer{}, certs: map[string]grant{}, now: time.Now}
	for _, ic := range cfg.Issuers {
		client, err := issuerClient(ic.CAFile)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
		}
		is := &issuer{cfg: ic, client: client, subjects: map[string]grant{}, log: log, now: time.Now}
		for _, m := range ic.Subjects {
			is.subjects[m.Subject], _ = m.grant() // checked by normalize
		}
		id.issuers[ic.Issuer] = is
	}
	for _, m := range cfg.Certificates {
		id.certs[m.Identity], _ = m.grant()
	}
	return id, nil
}

// Empty reports whether nothing is configured.
func (id *Identities) Empty() bool { return id == nil || (len(id.issuers) == 0 && len(id.certs) == 0) }

func issuerClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: issuerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// looksLikeJWT reports whether a bearer value has a JWT's shape.
func looksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2 && strings.HasPrefix(s, "eyJ")
}

// unverifiedIssuer reads iss from a token's payload, only to pick the
// verifier; nothing else of an unverified token is used.
func unverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}

// VerifyToken turns a JWT into a principal: the issuer named by its iss
// must be configured, its signature must verify with that issuer's keys
// (asymmetric algorithms only), its aud must include the configured
// audience, it must not be expired, and its subject or claims must map to
// an organization and role. Every refusal is the same Unauthenticated;
// an issuer that cannot be reached is Unavailable.
func (id *Identities) VerifyToken(ctx context.Context, raw string) (Principal, error) {
	if id == nil || len(raw) > maxTokenBytes {
		return Principal{}, errBadToken
	}
	is := id.issuers[unverifiedIssuer(raw)]
	if is == nil {
		id.log.WarnContext(ctx, "bearer token refused", "reason", "issuer not configured")
		return Principal{}, errBadToken
	}
	return is.verify(ctx, raw)
}

// issuer is one configured OIDC issuer: discovery done lazily, its JWKS
// cached.
type issuer struct {
	cfg      IssuerConfig
	client   *http.Client
	subjects map[string]grant
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	retryAt  time.Time // after a failed discovery
}

var errIssuerDown = errors.New("issuer unreachable")

func (is *issuer) unavailable() error {
	return apperr.New(apperr.Unavailable, "cannot verify the bearer token now: its issuer's discovery document or keys are unreachable; retry later").
		WithReason("ISSUER_UNAVAILABLE")
}

// discover returns the verifier, running discovery once (again after a
// failure, no sooner than discoveryBackoff later).
func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.verifier != nil {
		return is.verifier, nil
	}
	if is.now().Before(is.retryAt) {
		return nil, errIssuerDown
	}
	// go-oidc takes its HTTP client from the context; the context of the
	// key set outlives this call (background refreshes).
	octx := oidc.ClientContext(context.WithoutCancel(ctx), is.client)
	dctx, cancel := context.WithTimeout(octx, issuerTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, is.cfg.Issuer)
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err == nil {
		err = p.Claims(&meta)
	}
	if err == nil && !strings.HasPrefix(meta.JWKS, "https://") {
		err = errors.New("jwks_uri is not an https URL")
	}
	if err != nil {
		is.retryAt = is.now().Add(discoveryBackoff)
		is.log.ErrorContext(ctx, "OIDC discovery failed", "issuer", is.cfg.Issuer, "error", err)
		return nil, errIssuerDown
	}
	keys := &keySet{url: meta.JWKS, client: is.client, now: is.now, log: is.log, tokens: keysBurst}
	is.verifier = oidc.NewVerifier(is.cfg.Issuer, keys, &oidc.Config{ClientID: is.cfg.Audience, SupportedSigningAlgs: signingAlgs})
	return is.verifier, nil
}

type fetchNoteKey struct{}

// fetchNote carries, out of go-oidc's verifier, whether the key set could
// not be fetched (Unavailable, not the caller's fault).
type fetchNote struct{ err error }

func (is *issuer) verify(ctx context.Context, raw string) (Principal, error) {
	v, err := is.discover(ctx)
	if err != nil {
		return Principal{}, is.unavailable()
	}
	note := &fetchNote{}
	tok, err := v.Verify(context.WithValue(ctx, fetchNoteKey{}, note), raw)
	if err != nil {
		if note.err != nil {
			is.log.ErrorContext(ctx, "OIDC keys unreachable", "issuer", is.cfg.Issuer, "error", note.err)
			return Principal{}, is.unavailable()
		}
		is.log.WarnContext(ctx, "bearer token refused", "issuer", is.cfg.Issuer, "reason", err.Error())
		return Principal{}, errBadToken
	}
	sub := tok.Subject
	if sub == "" || len(sub) > maxSubjectBytes || !utf8.ValidString(sub) || strings.ContainsFunc(sub, unicode.IsControl) {
		is.log.WarnContext(ctx, "bearer token refused", "issuer", is.cfg.Issuer, "reason", "sub missing, over 255 bytes or not printable")
		return Principal{}, errBadToken
	}
	g, ok := is.subjects[sub]
	if !ok {
		if g, err = is.fromClaims(tok); err != nil {
			is.log.WarnContext(ctx, "bearer token refused", "issuer", is.cfg.Issuer, "subject", sub, "reason", err.Error())
			return Principal{}, errBadToken
		}
	}
	return Principal{ServiceAdmin: g.serviceAdmin, Org: g.org, Role: g.role,
		Subject: "oidc:" + is.cfg.Issuer + "#" + sub}, nil
}

// fromClaims maps the organization and role claims.
func (is *issuer) fromClaims(tok *oidc.IDToken) (grant, error) {
	if is.cfg.DisableClaims {
		return grant{}, errors.New("subject not mapped (claims disabled for this issuer)")
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return grant{}, err
	}
	orgV, _ := claims[is.cfg.OrgClaim].(string)
	roleV, _ := claims[is.cfg.RoleClaim].(string)
	if orgV == "" || roleV == "" {
		return grant{}, fmt.Errorf("subject not mapped and claims %s or %s missing", is.cfg.OrgClaim, is.cfg.RoleClaim)
	}
	org, err := parseOrg(orgV)
	if err != nil {
		return grant{}, fmt.Errorf("claim %s: %w", is.cfg.OrgClaim, err)
	}
	role := Role(roleV)
	if !slices.Contains(is.cfg.Roles, role) {
		return grant{}, fmt.Errorf("claim %s: role not allowed for this issuer", is.cfg.RoleClaim)
	}
	return grant{org: org, role: role}, nil
}

// keySet is an issuer's JWKS, cached. A token whose kid is unknown
// refreshes it (an issuer rotating its key), rate-limited by a token
// bucket so that a flood of made-up kids cannot turn into a flood of
// requests to the issuer; a known kid whose signature fails refreshes
// nothing. Keys older than keysMaxAge are refreshed before use (a key the
// issuer removed stops verifying), the old ones kept when that fails.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time
	tokens  float64
	last    time.Time // of the bucket's last refill
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	algs := make([]jose.SignatureAlgorithm, len(signingAlgs))
	for i, a := range signingAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("exactly one signature required")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, known, err := k.keysFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		if kid == "" || key.KeyID == kid {
			if payload, err := jws.Verify(&key); err == nil {
				return payload, nil
			}
		}
	}
	if known {
		return nil, errors.New("signature does not verify with the issuer's key")
	}
	return nil, errors.New("no key of the issuer verifies the signature")
}

// keysFor returns the keys to try for kid, refreshing them when kid is
// unknown (within the rate limit) or they are old; known says whether kid
// was among the cached keys.
func (k *keySet) keysFor(ctx context.Context, kid string) (keys []jose.JSONWebKey, known bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	known = kid != "" && slices.ContainsFunc(k.keys, func(j jose.JSONWebKey) bool { return j.KeyID == kid })
	switch {
	case k.fetched.IsZero():
		// First use: fetch, failure is Unavailable.
	case now.Sub(k.fetched) > keysMaxAge:
		if fresh, err := k.fetch(ctx); err == nil {
			k.keys, k.fetched = fresh, now
		} else {
			// Try again keysRetry later, not on every call (each would
			// wait out the issuer's timeout).
			k.fetched = now.Add(-keysMaxAge + keysRetry)
			k.log.WarnContext(ctx, "OIDC keys refresh failed; using the cached ones", "jwks_uri", k.url, "error", err)
		}
		return k.keys, known, nil
	case known:
		return k.keys, true, nil
	default:
		// Unknown kid: refresh if the bucket allows.
		k.tokens = min(keysBurst, k.tokens+now.Sub(k.last).Seconds()/keysRefillEvery.Seconds())
		k.last = now
		if k.tokens < 1 {
			return k.keys, false, nil
		}
		k.tokens--
	}
	fresh, err := k.fetch(ctx)
	if err != nil {
		if k.fetched.IsZero() {
			if n, ok := ctx.Value(fetchNoteKey{}).(*fetchNote); ok {
				n.err = err
			}
			return nil, false, err
		}
		// A refresh for an unknown kid failed: the token is refused with
		// the cached keys (the issuer being down is logged).
		k.log.WarnContext(ctx, "OIDC keys refresh failed", "jwks_uri", k.url, "error", err)
		return k.keys, false, nil
	}
	if k.fetched.IsZero() {
		k.last = now
	}
	k.keys, k.fetched = fresh, now
	known = kid != "" && slices.ContainsFunc(k.keys, func(j jose.JSONWebKey) bool { return j.KeyID == kid })
	return k.keys, known, nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), issuerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", k.url, err)
	}
	// Only public signing keys are used.
	keys := set.Keys[:0]
	for _, key := range set.Keys {
		if key.Valid() && key.IsPublic() && (key.Use == "" || key.Use == "sig") {
			keys = append(keys, key)
		}
	}
	return keys, nil
}
