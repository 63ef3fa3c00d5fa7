package entra

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var b64 = base64.RawURLEncoding

// Signer issues RS256 JWTs with a key published in the JWKS under KeyID.
type Signer struct {
	key   *rsa.PrivateKey
	KeyID string
}

// NewSigner generates a signing key of the given size (2048 if 0).
func NewSigner(bits int) (*Signer, error) {
	if bits == 0 {
		bits = 2048
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("generating token signing key: %w", err)
	}
	return signerFor(k)
}

// LoadOrNewSigner reuses dir/token-signing-key.pem, so tokens clients have
// cached stay valid across restarts, or creates and keeps a new key.
func LoadOrNewSigner(dir string, bits int) (*Signer, error) {
	p := filepath.Join(dir, "token-signing-key.pem")
	if b, err := os.ReadFile(p); err == nil {
		if blk, _ := pem.Decode(b); blk != nil {
			if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
				return signerFor(k)
			}
		}
	}
	s, err := NewSigner(bits)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(s.key)})
	if err := os.WriteFile(p, out, 0o600); err != nil {
		return nil, fmt.Errorf("writing token signing key: %w", err)
	}
	return s, nil
}

func signerFor(k *rsa.PrivateKey) (*Signer, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshaling signing key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &Signer{key: k, KeyID: b64.EncodeToString(sum[:15])}, nil
}

// JWK returns the public key as a JSON Web Key.
func (s *Signer) JWK() map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "kid": s.KeyID, "x5t": s.KeyID,
		"n": b64.EncodeToString(s.key.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(s.key.E)).Bytes()),
	}
}

// Sign serializes claims into a signed compact JWT.
func (s *Signer) Sign(claims any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": s.KeyID, "x5t": s.KeyID})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshaling claims: %w", err)
	}
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// Claims are the access-token claims the simulator issues and checks.
type Claims struct {
	Aud            string   `json:"aud"`
	Iss            string   `json:"iss"`
	Iat            int64    `json:"iat"`
	Nbf            int64    `json:"nbf"`
	Exp            int64    `json:"exp"`
	Aio            string   `json:"aio,omitempty"`
	AppDisplayName string   `json:"app_displayname,omitempty"`
	AppID          string   `json:"appid"`
	AppIDAcr       string   `json:"appidacr"`
	Azp            string   `json:"azp"`
	AzpAcr         string   `json:"azpacr"`
	Idp            string   `json:"idp"`
	Oid            string   `json:"oid"`
	Rh             string   `json:"rh,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	Sub            string   `json:"sub"`
	Tid            string   `json:"tid"`
	Uti            string   `json:"uti"`
	Ver            string   `json:"ver"`
	IdTyp          string   `json:"idtyp"`
	// WallExp is the expiry on the wall clock (the simulator's own claim):
	// clients such as MSAL cache tokens by wall time, so by default a token
	// expires only when both clocks say so (see Verifier.Strict).
	WallExp int64 `json:"sim_wall_exp,omitempty"`
}

// HasRole reports whether the token carries any of roles.
func (c *Claims) HasRole(roles ...string) bool {
	for _, have := range c.Roles {
		for _, want := range roles {
			if strings.EqualFold(have, want) {
				return true
			}
		}
	}
	return false
}

// Token verification failures, mapped by each API to its own error shape.
var (
	ErrNoToken   = errors.New("access token is empty")
	ErrMalformed = errors.New("access token is malformed")
	ErrSignature = errors.New("access token signature is invalid")
	ErrExpired   = errors.New("access token has expired")
)

// Verifier checks access tokens the Signer issued. Verified tokens are
// cached, so repeated calls cost a map lookup.
type Verifier struct {
	signer *Signer
	cache  sync.Map // raw token -> *Claims
	n      atomic.Int64
	// Strict expires tokens on the simulator clock alone, so advancing it
	// past a token's exp makes APIs refuse tokens clients still cache.
	Strict bool
}

func (v *Verifier) expired(cl *Claims, simNow time.Time) bool {
	simExpired := simNow.Unix() >= cl.Exp
	if v.Strict || cl.WallExp == 0 {
		return simExpired
	}
	return simExpired && wallNow().Unix() >= cl.WallExp
}

// NewVerifier verifies tokens signed by s.
func NewVerifier(s *Signer) *Verifier { return &Verifier{signer: s} }

// Verify checks signature and lifetime (at now) and returns the claims.
func (v *Verifier) Verify(raw string, now time.Time) (*Claims, error) {
	if raw == "" {
		return nil, ErrNoToken
	}
	if c, ok := v.cache.Load(raw); ok {
		cl := c.(*Claims)
		if v.expired(cl, now) {
			return cl, ErrExpired
		}
		return cl, nil
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, ErrMalformed
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&v.signer.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return nil, ErrSignature
	}
	body, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, ErrMalformed
	}
	cl := &Claims{}
	if err := json.Unmarshal(body, cl); err != nil {
		return nil, ErrMalformed
	}
	if v.n.Add(1) > 200000 {
		v.cache.Clear()
		v.n.Store(0)
	}
	v.cache.Store(raw, cl)
	if v.expired(cl, now) {
		return cl, ErrExpired
	}
	return cl, nil
}

// assertion is a parsed client assertion (private_key_jwt).
type assertion struct {
	header struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	claims struct {
		Aud any    `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
		Nbf int64  `json:"nbf"`
	}
	signed []byte
	sig    []byte
}

func decodeAnyB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func parseAssertion(raw string) (*assertion, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("client assertion is not a JWT")
	}
	a := &assertion{signed: []byte(parts[0] + "." + parts[1])}
	h, err := b64.DecodeString(parts[0])
	if err != nil || json.Unmarshal(h, &a.header) != nil {
		return nil, errors.New("client assertion header is malformed")
	}
	c, err := b64.DecodeString(parts[1])
	if err != nil || json.Unmarshal(c, &a.claims) != nil {
		return nil, errors.New("client assertion payload is malformed")
	}
	if a.sig, err = b64.DecodeString(parts[2]); err != nil {
		return nil, errors.New("client assertion signature is malformed")
	}
	return a, nil
}

func (a *assertion) thumbprints() (sha1, sha256 []byte) {
	if a.header.X5t != "" {
		sha1, _ = decodeAnyB64(a.header.X5t)
	}
	if a.header.X5tS256 != "" {
		sha256, _ = decodeAnyB64(a.header.X5tS256)
	}
	return sha1, sha256
}

func (a *assertion) verify(cert *x509.Certificate) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("only RSA certificates are supported")
	}
	sum := sha256.Sum256(a.signed)
	switch a.header.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], a.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], a.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("unsupported signing algorithm %q", a.header.Alg)
}

func (a *assertion) audiences() []string {
	switch v := a.claims.Aud.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

var wallNow = time.Now
