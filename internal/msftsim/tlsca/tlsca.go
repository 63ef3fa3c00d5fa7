// Package tlsca generates the simulator's private certificate authority and
// the serving certificate it signs (SANs localhost, 127.0.0.1, ::1 and any
// extra names), so clients that insist on https (MSAL) can trust the
// simulator through one CA bundle.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Bundle is a CA and a leaf certificate it issued.
type Bundle struct {
	CAPEM  []byte // the CA certificate, PEM: what clients trust
	Pool   *x509.CertPool
	Server tls.Certificate
	caKey  *ecdsa.PrivateKey
}

// New creates a fresh CA (valid ten years) and a serving certificate for
// localhost, 127.0.0.1, ::1 and extraHosts (IPs or DNS names).
func New(extraHosts ...string) (*Bundle, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	return issue(caKey, nil, extraHosts)
}

// LoadOrNew reuses the CA kept in dir (ca.pem, ca-key.pem) so clients that
// trust it keep working across restarts, or creates and keeps a new one.
func LoadOrNew(dir string, extraHosts ...string) (*Bundle, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, "ca.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err1 == nil && err2 == nil {
		cb, _ := pem.Decode(certPEM)
		kb, _ := pem.Decode(keyPEM)
		if cb != nil && kb != nil {
			cert, err := x509.ParseCertificate(cb.Bytes)
			key, kerr := x509.ParseECPrivateKey(kb.Bytes)
			if err == nil && kerr == nil && time.Now().Before(cert.NotAfter) {
				return issue(key, cert, extraHosts)
			}
		}
	}
	b, err := New(extraHosts...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(b.caKey)
	if err != nil {
		return nil, fmt.Errorf("marshaling CA key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("writing CA key: %w", err)
	}
	if _, err := b.WriteCA(dir); err != nil {
		return nil, err
	}
	return b, nil
}

// issue signs a serving certificate with caKey, creating the CA
// certificate first when caCert is nil.
func issue(caKey *ecdsa.PrivateKey, caCert *x509.Certificate, extraHosts []string) (*Bundle, error) {
	now := time.Now()
	if caCert == nil {
		var err error
		if caCert, err = newCACert(caKey, now); err != nil {
			return nil, err
		}
	}
	caDER := caCert.Raw
	return leaf(caKey, caCert, caDER, now, extraHosts)
}

func newCACert(caKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "msftsim local CA", Organization: []string{"dzconnect msftsim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return caCert, nil
}

func leaf(caKey *ecdsa.PrivateKey, caCert *x509.Certificate, caDER []byte, now time.Time, extraHosts []string) (*Bundle, error) {

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating server key: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	for _, h := range extraHosts {
		if ip := net.ParseIP(h); ip != nil {
			leafTmpl.IPAddresses = append(leafTmpl.IPAddresses, ip)
		} else if h != "" {
			leafTmpl.DNSNames = append(leafTmpl.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &Bundle{
		CAPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Pool:   pool,
		Server: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey},
		caKey:  caKey,
	}, nil
}

// WriteCA writes the CA bundle to dir/ca.pem and returns the path.
func (b *Bundle) WriteCA(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating state dir: %w", err)
	}
	p := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p, b.CAPEM, 0o644); err != nil {
		return "", fmt.Errorf("writing CA bundle: %w", err)
	}
	return p, nil
}
