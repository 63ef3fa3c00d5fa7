package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/config"
)

// serverTLS loads the listeners' TLS configuration: the public one (with
// --tls-client-ca: mutual TLS, a client certificate required and verified)
// and the internal one (same certificate, no client certificate). Both
// nil: plaintext.
func serverTLS(cfg config.Config) (public, internal *tls.Config, err error) {
	if cfg.TLSCertFile == "" {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading TLS certificate: %w", err)
	}
	public = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	internal = public.Clone()
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--tls-client-ca: %s holds no PEM certificate", cfg.TLSClientCA)
		}
		public.ClientCAs = pool
		public.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return public, internal, nil
}

// loadIdentities builds the workload identities of --auth-config-file and
// the --oidc-* flags (an issuer of the flags joins the file's).
func loadIdentities(cfg config.Config, log *slog.Logger) (*auth.Identities, error) {
	var ic auth.IdentityConfig
	if cfg.AuthConfigFile != "" {
		var err error
		if ic, err = auth.LoadIdentityConfig(cfg.AuthConfigFile); err != nil {
			return nil, err
		}
	}
	if cfg.OIDCIssuer != "" {
		ic.Issuers = append(ic.Issuers, auth.IssuerConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience,
			CAFile: cfg.OIDCCAFile, OrgClaim: cfg.OIDCOrgClaim, RoleClaim: cfg.OIDCRoleClaim})
	}
	if len(ic.Certificates) > 0 && cfg.TLSClientCA == "" {
		return nil, fmt.Errorf("--auth-config-file maps certificate identities but --tls-client-ca is not set: no client certificate would be verified")
	}
	id, err := auth.NewIdentities(ic, log.With("component", "auth"))
	if err != nil {
		return nil, fmt.Errorf("workload identities: %w", err)
	}
	issuers := make([]string, 0, len(ic.Issuers))
	for _, is := range ic.Issuers {
		issuers = append(issuers, is.Issuer)
	}
	log.Info("authentication", "api_keys", true, "oidc_issuers", issuers, "certificate_mappings", len(ic.Certificates),
		"mutual_tls", cfg.TLSClientCA != "")
	return id, nil
}
