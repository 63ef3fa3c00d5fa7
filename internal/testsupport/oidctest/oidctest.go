// Package oidctest is a small OpenID Connect issuer for tests: discovery
// and a JWKS over TLS (httptest), RS256 keys it can rotate, and helpers
// that sign tokens, also malformed ones (alg none, HS256, a stranger's
// key), to prove what dzconnect refuses.
package oidctest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Key is a signing key with its kid.
type Key struct {
	ID   string
	Priv *rsa.PrivateKey
}

// NewKey makes a 2048-bit RSA key.
func NewKey(t testing.TB, id string) Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Priv: k}
}

// Issuer is a running test issuer.
type Issuer struct {
	URL    string // the issuer (and discovery base) URL, https://127.0.0.1:port
	CAFile string // PEM of the server's certificate, for --oidc-ca-file

	srv      *httptest.Server
	mu       sync.Mutex
	keys     []Key // published in the JWKS; keys[0] signs
	serial   int
	jwks     atomic.Int64
	down     atomic.Bool
	discover atomic.Int64
}

// Start runs an issuer until the test ends.
func Start(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{}
	is.keys = []Key{NewKey(t, "key-1")}
	is.serial = 1
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.discover.Add(1)
		writeJSON(w, map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/keys",
			"authorization_endpoint": is.URL + "/authorize", "token_endpoint": is.URL + "/token",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.jwks.Add(1)
		is.mu.Lock()
		keys := make([]map[string]string, 0, len(is.keys))
		for _, k := range is.keys {
			keys = append(keys, jwk(k))
		}
		is.mu.Unlock()
		writeJSON(w, map[string]any{"keys": keys})
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	is.CAFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(is.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func jwk(k Key) map[string]string {
	pub := k.Priv.PublicKey
	return map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.ID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Rotate publishes a new signing key; keepOld keeps the previous keys in
// the JWKS (an overlap), else they are withdrawn.
func (is *Issuer) Rotate(t testing.TB, keepOld bool) Key {
	t.Helper()
	is.mu.Lock()
	defer is.mu.Unlock()
	is.serial++
	k := NewKey(t, fmt.Sprintf("key-%d", is.serial))
	if keepOld {
		is.keys = append([]Key{k}, is.keys...)
	} else {
		is.keys = []Key{k}
	}
	return k
}

// Current is the signing key.
func (is *Issuer) Current() Key {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.keys[0]
}

// JWKSFetches counts JWKS requests served.
func (is *Issuer) JWKSFetches() int64 { return is.jwks.Load() }

// SetDown makes discovery and the JWKS answer 503.
func (is *Issuer) SetDown(down bool) { is.down.Store(down) }

// Claims builds a token's claims: iss, sub, aud, iat, exp (ttl from now)
// plus extra.
func (is *Issuer) Claims(sub, aud string, ttl time.Duration, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": is.URL, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// Token signs claims with the current key.
func (is *Issuer) Token(t testing.TB, claims map[string]any) string {
	return Sign(t, is.Current(), claims)
}

// Sign makes an RS256 JWT with key.
func Sign(t testing.TB, key Key, claims map[string]any) string {
	t.Helper()
	in := encode(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": key.ID}, claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key.Priv, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64(sig)
}

// Unsigned makes a JWT with alg none and an empty signature.
func Unsigned(t testing.TB, claims map[string]any) string {
	return encode(t, map[string]any{"alg": "none", "typ": "JWT"}, claims) + "."
}

// HMAC makes an HS256 JWT keyed with secret (e.g. the issuer's public
// key, the classic algorithm-confusion attack), with the given kid.
func HMAC(t testing.TB, kid string, secret []byte, claims map[string]any) string {
	in := encode(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// PublicPEM is key's public key in PEM, what an attacker would use as an
// HMAC secret.
func PublicPEM(key Key) []byte {
	n := key.Priv.N.Bytes()
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: n})
}

func encode(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c)
}
