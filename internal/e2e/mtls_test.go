package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key}
}

func (ca testCA) pemFile(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// client issues a client certificate with common name cn and URI SANs.
func (ca testCA) client(t *testing.T, cn string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS: with --tls-client-ca both public listeners require a
// client certificate of that CA; a certificate whose identity (SPIFFE ID
// URI SAN, or CN) --auth-config-file maps authenticates a caller without
// a bearer token, on gRPC and REST alike; an authorization header still
// decides when present; the identity cannot be claimed by header; the
// internal listener asks for no certificate.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	// The organization exists before the mTLS replica's configuration
	// names it: made on a first replica of the same database.
	first := stack.Start(t)
	org := first.NewOrg(t, "mTLS")
	other := first.NewOrg(t, "Other")
	orgID := strings.TrimPrefix(org.Name, "organizations/")
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	certFile, keyFile, serverPool := selfSigned(t)
	ca, stranger := newTestCA(t, "client CA"), newTestCA(t, "someone else's CA")
	const spiffe = "spiffe://dz.test/ns/platform/sa/deployer"
	cfgFile := filepath.Join(t.TempDir(), "auth.json")
	cfg, err := json.Marshal(map[string]any{"certificates": []map[string]any{
		{"identity": spiffe, "organization": org.Name, "role": "operator"},
		{"identity": "reader.dz.test", "organization": orgID, "role": "viewer"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	s := stack.Start(t, stack.Options{DatabaseURL: first.DatabaseURL, Vault: first.Vault, ExtraArgs: []string{
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-client-ca", ca.pemFile(t), "--auth-config-file", cfgFile}})

	dial := func(certs ...tls.Certificate) *grpc.ClientConn {
		conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: serverPool, Certificates: certs})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	tenantReq := &v1.CreateTenantRequest{Parent: org.Name, Tenant: &v1.Tenant{EntraTenantId: "11111111-2222-3333-4444-555555555555",
		Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "via mTLS"}}
	ctx := t.Context()

	// No certificate, or one of another CA: refused at the handshake.
	for name, conn := range map[string]*grpc.ClientConn{"no certificate": dial(), "another CA": dial(stranger.client(t, "x", spiffe))} {
		_, err := v1.NewTenantServiceClient(conn).ListTenants(org.ViewerCtx, &v1.ListTenantsRequest{Parent: org.Name})
		if code := wantCodeSoft(err); code != codes.Unavailable {
			t.Errorf("%s: %v, want the handshake refused (Unavailable)", name, err)
		}
	}

	// A mapped SPIFFE ID is an operator of the organization, no bearer.
	deployer := dial(ca.client(t, "deployer", spiffe))
	tr, err := v1.NewTenantServiceClient(deployer).CreateTenant(ctx, tenantReq)
	if err != nil {
		t.Fatalf("mapped certificate: %v", err)
	}
	wantCode(t, errOf(v1.NewAuditServiceClient(deployer).ListAuditEvents(ctx, &v1.ListAuditEventsRequest{Parent: org.Name})), codes.PermissionDenied)
	wantCode(t, errOf(v1.NewTenantServiceClient(deployer).ListTenants(ctx, &v1.ListTenantsRequest{Parent: other.Name})), codes.NotFound)
	ev, err := v1.NewAuditServiceClient(deployer).ListAuditEvents(org.AdminCtx, &v1.ListAuditEventsRequest{Parent: org.Name, Resource: tr.GetTenant().GetName()})
	if err != nil || len(ev.GetAuditEvents()) != 1 || ev.GetAuditEvents()[0].GetActor() != "cert:"+spiffe {
		t.Fatalf("audit of the certificate's create: %v %v", ev, err)
	}
	// A CN mapping: viewer.
	reader := dial(ca.client(t, "reader.dz.test"))
	if _, err := v1.NewTenantServiceClient(reader).GetTenant(ctx, &v1.GetTenantRequest{Name: tr.GetTenant().GetName()}); err != nil {
		t.Fatalf("CN-mapped certificate: %v", err)
	}
	wantCode(t, errOf(v1.NewTenantServiceClient(reader).CreateTenant(ctx, tenantReq)), codes.PermissionDenied)

	// An unmapped certificate needs a bearer; with one, the key decides.
	plain := dial(ca.client(t, "unmapped"))
	wantCode(t, errOf(v1.NewTenantServiceClient(plain).ListTenants(ctx, &v1.ListTenantsRequest{Parent: org.Name})), codes.Unauthenticated)
	if _, err := v1.NewTenantServiceClient(plain).ListTenants(org.ViewerCtx, &v1.ListTenantsRequest{Parent: org.Name}); err != nil {
		t.Fatalf("unmapped certificate with an API key: %v", err)
	}
	wantCode(t, errOf(v1.NewTenantServiceClient(deployer).ListTenants(other.ViewerCtx, &v1.ListTenantsRequest{Parent: org.Name})), codes.NotFound)
	// The gateway's forwarding metadata from a network client is ignored.
	spoof := metadata.AppendToOutgoingContext(ctx, "x-dzconnect-client-cert", spiffe)
	wantCode(t, errOf(v1.NewTenantServiceClient(plain).ListTenants(spoof, &v1.ListTenantsRequest{Parent: org.Name})), codes.Unauthenticated)

	// REST over mutual TLS.
	httpsURL := strings.Replace(s.HTTPURL, "http://", "https://", 1)
	get := func(cert *tls.Certificate, path string, hdr map[string]string) (int, error) {
		cfg := &tls.Config{RootCAs: serverPool}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		req, err := http.NewRequest("GET", httpsURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deployerCert, plainCert := ca.client(t, "deployer", spiffe), ca.client(t, "unmapped")
	if code, err := get(&deployerCert, "/v1/"+tr.GetTenant().GetName(), nil); err != nil || code != 200 {
		t.Fatalf("REST with a mapped certificate: %d %v", code, err)
	}
	if _, err := get(nil, "/healthz", nil); err == nil {
		t.Fatal("REST without a client certificate accepted")
	}
	for _, h := range []string{"X-Dzconnect-Client-Cert", "Grpc-Metadata-X-Dzconnect-Client-Cert"} {
		if code, err := get(&plainCert, "/v1/"+org.Name+"/tenants", map[string]string{h: spiffe}); err != nil || code != 401 {
			t.Errorf("REST claiming an identity in %s: %d %v, want 401", h, code, err)
		}
	}
	if code, err := get(&plainCert, "/v1/"+org.Name+"/tenants", map[string]string{"Authorization": "Bearer " + org.Viewer}); err != nil || code != 200 {
		t.Errorf("REST with an unmapped certificate and an API key: %d %v", code, err)
	}

	// The internal listener: TLS, no client certificate asked.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverPool}}}
	resp, err := client.Get(strings.Replace(s.InternalURL, "http://", "https://", 1) + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("internal /metrics without a client certificate: %v %v", resp, err)
	}
	resp.Body.Close()
}
