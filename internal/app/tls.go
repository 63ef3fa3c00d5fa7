package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

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
