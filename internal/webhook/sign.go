package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	HeaderSignature = "Dzconnect-Signature"
	HeaderTimestamp = "Dzconnect-Timestamp"
	HeaderEvent     = "Dzconnect-Event"
	HeaderDelivery  = "Dzconnect-Delivery"
)

// SecretPrefix starts every signing secret, so a leaked one is recognisable.
const SecretPrefix = "dzwhsec_"

// DefaultTolerance is how old a delivery's timestamp Verify accepts.
const DefaultTolerance = 5 * time.Minute

// NewSecret returns a fresh signing secret: the prefix and 32 random bytes,
// base64url. The whole string (prefix included) is the HMAC key.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Sign returns the Dzconnect-Signature header value for body sent at
// timestamp (Unix seconds): "v1=" and the hex HMAC-SHA256, keyed with the
// secret, of "<timestamp>.<body>".
func Sign(secret string, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret string, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature      = errors.New("webhook: no v1 signature")
	ErrBadTimestamp     = errors.New("webhook: malformed timestamp")
	ErrTimestampSkew    = errors.New("webhook: timestamp outside the tolerance (replayed or clock skew)")
	ErrSignatureInvalid = errors.New("webhook: signature does not match")
)

// Verify checks a received delivery, for receivers: signature is the
// Dzconnect-Signature header (one or more comma-separated "v1=<hex>"),
// timestamp the Dzconnect-Timestamp header, body the raw request body
// (before any JSON decoding). A timestamp further than tolerance from now
// is refused (0: DefaultTolerance), so a captured delivery cannot be
// replayed later. Comparison is constant-time.
func Verify(secret, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampSkew
	}
	want := mac(secret, ts, body)
	found := false
	for _, part := range strings.Split(signature, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		found = true
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if !found {
		return ErrNoSignature
	}
	return ErrSignatureInvalid
}
