package tlsca

import (
	"crypto/x509"
	"testing"
)

func TestLoadOrNewKeepsCA(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrNew(dir, "sim.local", "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrNew(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CAPEM) != string(b.CAPEM) {
		t.Fatal("CA not reused")
	}
	leaf, err := x509.ParseCertificate(a.Server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "sim.local", "10.0.0.5"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.Pool, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
}
