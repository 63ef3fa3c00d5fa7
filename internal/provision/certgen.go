package provision

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the thumbprint Entra uses
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// CertificateKeyBits is the RSA key size of generated certificate
// credentials. Entra's certificate-credentials page documents RSA
// signatures for client assertions (RS256 with the SHA-1 x5t; newer
// revisions PS256 with x5t#S256, which is what azidentity's MSAL sends);
// ECDSA is not documented there, so RSA is the safe choice. 2048 bits is
// the usual minimum for keyCredentials.
const CertificateKeyBits = 2048

// certClockSkew backdates a generated certificate's start, so that a token
// request signed right after it was made is not refused by a server whose
// clock is slightly behind.
const certClockSkew = 5 * time.Minute

// GeneratedCertificate is a new key pair and its self-signed certificate.
// PEM (private key and certificate) goes to Vault and nowhere else; DER is
// what Entra receives (keyCredentials.key).
type GeneratedCertificate struct {
	PEM        string // PKCS#8 private key, then the certificate; never logged
	DER        []byte
	Thumbprint string // SHA-1, upper-case hex, as Entra shows it
	NotBefore  time.Time
	NotAfter   time.Time
}

// String never shows the private key.
func (g GeneratedCertificate) String() string { return "certificate " + g.Thumbprint }

// GoString keeps %#v from printing the private key.
func (g GeneratedCertificate) GoString() string { return g.String() }

// GenerateCertificate makes an RSA key pair and a self-signed certificate
// valid for lifetime from now less a clock-skew margin, subject
// CN=<subject>. The certificate is only a carrier for the public key:
// Entra checks the assertion's signature against it, not a chain.
func GenerateCertificate(subject string, now time.Time, lifetime time.Duration) (GeneratedCertificate, error) {
	if lifetime <= 0 {
		return GeneratedCertificate{}, fmt.Errorf("certificate lifetime must be positive")
	}
	key, err := rsa.GenerateKey(rand.Reader, CertificateKeyBits)
	if err != nil {
		return GeneratedCertificate{}, fmt.Errorf("generating the key pair: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return GeneratedCertificate{}, fmt.Errorf("generating the serial number: %w", err)
	}
	// The validity spans exactly lifetime (what a policy's
	// asymmetricKeyLifetime measures), backdated by the skew margin.
	notBefore := now.Add(-certClockSkew).UTC().Truncate(time.Second)
	notAfter := notBefore.Add(lifetime)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return GeneratedCertificate{}, fmt.Errorf("creating the certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return GeneratedCertificate{}, fmt.Errorf("encoding the private key: %w", err)
	}
	var b strings.Builder
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	sum := sha1.Sum(der) //nolint:gosec
	return GeneratedCertificate{PEM: b.String(), DER: der, Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])),
		NotBefore: notBefore, NotAfter: notAfter}, nil
}
