package provision

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
)

func TestGenerateCertificate(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	g, err := GenerateCertificate("dzconnect test", now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The Vault value is what azidentity reads: the key and the certificate.
	c, err := microsoft.ParseCertificate([]byte(g.PEM), nil)
	if err != nil {
		t.Fatalf("parsing the generated PEM: %v", err)
	}
	key, ok := c.Key.(*rsa.PrivateKey)
	if !ok || key.N.BitLen() != CertificateKeyBits || len(c.Chain) != 1 {
		t.Fatalf("key %T, chain %d", c.Key, len(c.Chain))
	}
	leaf := c.Chain[0]
	if string(leaf.Raw) != string(g.DER) || leaf.Subject.CommonName != "dzconnect test" {
		t.Fatalf("certificate %v", leaf.Subject)
	}
	if !leaf.NotBefore.Equal(now.Add(-certClockSkew)) || !leaf.NotAfter.Equal(now.Add(-certClockSkew).Add(365*24*time.Hour)) ||
		!g.NotBefore.Equal(leaf.NotBefore) || !g.NotAfter.Equal(leaf.NotAfter) {
		t.Fatalf("validity %s .. %s", leaf.NotBefore, leaf.NotAfter)
	}
	if len(g.Thumbprint) != 40 || strings.ToUpper(g.Thumbprint) != g.Thumbprint {
		t.Fatalf("thumbprint %q", g.Thumbprint)
	}
	// Printing it never shows the key.
	for _, s := range []string{g.String(), fmt.Sprintf("%v", g), fmt.Sprintf("%+v", g), fmt.Sprintf("%#v", g)} {
		if strings.Contains(s, "PRIVATE KEY") {
			t.Fatalf("the private key printed: %s", s)
		}
	}
	// Two calls: two key pairs.
	g2, err := GenerateCertificate("dzconnect test", now, time.Hour)
	if err != nil || g2.Thumbprint == g.Thumbprint {
		t.Fatalf("second certificate: %v", err)
	}
	if _, err := GenerateCertificate("x", now, 0); err == nil {
		t.Fatal("a zero lifetime was accepted")
	}
}

func TestRotatable(t *testing.T) {
	secret := integration.Credential{ID: uuid.New(), Type: integration.CredentialClientSecret, State: integration.CredentialActive, Source: integration.SourceProvisioned}
	cert := integration.Credential{ID: uuid.New(), Type: integration.CredentialCertificate, State: integration.CredentialActive, Source: integration.SourceProvisioned}
	custCert := cert
	custCert.Source = integration.SourceCustomer
	app := uuid.NullUUID{UUID: uuid.New(), Valid: true}
	prov := func(creds ...integration.Credential) integration.Integration {
		return integration.Integration{Mode: integration.ModeProvisioned, AppObjectID: app, State: integration.StateHealthy, Credentials: creds}
	}
	for _, tc := range []struct {
		name   string
		in     integration.Integration
		want   integration.CredentialType
		result integration.CredentialType
		reason string
	}{
		{"rotate a secret", prov(secret), "", integration.CredentialClientSecret, ""},
		{"rotate a generated certificate", prov(cert), "", integration.CredentialCertificate, ""},
		{"rotate a customer's certificate", prov(custCert), "", "", "NO_CLIENT_SECRET"},
		{"rotate nothing active", prov(), "", "", "NO_CLIENT_SECRET"},
		{"secret to certificate", prov(secret), integration.CredentialCertificate, integration.CredentialCertificate, ""},
		{"certificate to certificate", prov(cert), integration.CredentialCertificate, integration.CredentialCertificate, ""},
		{"certificate with nothing active", prov(), integration.CredentialCertificate, integration.CredentialCertificate, ""},
		{"customer-managed", integration.Integration{Mode: integration.ModeCustomerManaged, Credentials: []integration.Credential{secret}},
			integration.CredentialCertificate, "", "NOT_PROVISIONED"},
		{"shared", integration.Integration{Mode: integration.ModeShared}, integration.CredentialCertificate, "", "NOT_PROVISIONED"},
		{"still provisioning", integration.Integration{Mode: integration.ModeProvisioned, State: integration.StateProvisioning},
			integration.CredentialCertificate, "", "NOT_PROVISIONED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rotatable("organizations/o/tenants/t/integrations/i", tc.in, tc.want)
			if tc.reason == "" {
				if err != nil || got != tc.result {
					t.Fatalf("rotatable = %q, %v; want %q", got, err, tc.result)
				}
				return
			}
			var e *apperr.Error
			if err == nil || !apperr.Is(err, apperr.FailedPrecondition) || !errors.As(err, &e) || e.Reason != tc.reason {
				t.Fatalf("rotatable = %q, %v; want FailedPrecondition %s", got, err, tc.reason)
			}
		})
	}
}
