package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// selfSigned writes a certificate for 127.0.0.1 and its key; it returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dzconnect test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS serves gRPC and REST over TLS and refuses plaintext.
func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile}})
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over TLS: %v %v", hc, err)
	}
	if _, err := v1.NewOrganizationServiceClient(conn).CreateOrganization(s.Admin(t), &v1.CreateOrganizationRequest{
		Organization: &v1.Organization{DisplayName: "TLS"}}); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(strings.Replace(s.HTTPURL, "http://", "https://", 1) + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST over TLS: %v %v", resp, err)
	}
	resp.Body.Close()
	// Plaintext is refused.
	if _, err := v1.NewOrganizationServiceClient(s.Conn).ListOrganizations(s.Admin(t), &v1.ListOrganizationsRequest{}); err == nil {
		t.Fatal("plaintext gRPC accepted by a TLS server")
	}
}

// TestOversizedGRPCRequest: a message over the limit is refused before any
// handler runs.
func TestOversizedGRPCRequest(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	_, err := s.Clients().Orgs.CreateOrganization(s.Admin(t), &v1.CreateOrganizationRequest{
		Organization: &v1.Organization{DisplayName: strings.Repeat("x", 2<<20)}})
	wantCode(t, err, codes.ResourceExhausted)
	if n := countRows(t, s, "organizations"); n != 0 {
		t.Fatalf("%d organizations written", n)
	}
}

// TestGracefulShutdown: a call in flight when the server is told to stop
// (SIGTERM) finishes and is answered; new calls are refused afterwards.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t, msftsim.TenantSpec{})
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.users.list": {Latency: &faults.Latency{Min: faults.Duration(2 * time.Second), Max: faults.Duration(2 * time.Second)}},
	}}})
	f.sim.Admin().ResetCounters()
	done := make(chan error, 1)
	go func() {
		_, err := f.s.Clients().Integrations.CheckIntegration(f.org.OperatorCtx, &v1.CheckIntegrationRequest{Name: in.GetName()})
		done <- err
	}()
	// Once its token is counted (the simulator counts answered requests)
	// the check is in its probes, and the 2 s users call is still ahead.
	deadline := time.Now().Add(30 * time.Second)
	for f.sim.Admin().Count("entra.token").Requests == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the check never got its token")
		}
		time.Sleep(10 * time.Millisecond) // polling the simulator's counter, not waiting for an outcome
	}
	if err := f.s.Stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight call failed during shutdown: %v", err)
	}
	if n := countRows(t, f.s, "checks"); n != 1 {
		t.Fatalf("%d checks recorded, want the in-flight one", n)
	}
	if _, err := f.s.Clients().Orgs.ListOrganizations(f.s.Admin(t), &v1.ListOrganizationsRequest{}); err == nil {
		t.Fatal("a stopped server answered")
	}
}
