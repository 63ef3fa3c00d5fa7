package app

import (
	"context"
	"fmt"
	"time"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/token"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// tokenSessions implements token.Sessions with the credential
// construction checks use: the secret from sharedAwareSecrets (the active
// credential's, or the shared application's), the verify.Credentials of
// the tenant and client ID, converted by msCredentials and opened by
// microsoft.Client.NewSession (client secret or certificate assertion).
// Keep it in step with verify.Service.run.
type tokenSessions struct {
	ms      *microsoft.Client
	secrets sharedAwareSecrets
}

var _ token.Sessions = tokenSessions{}

func (s tokenSessions) Open(ctx context.Context, t tenant.Tenant, in integration.Integration) (token.Source, error) {
	secret, err := s.secrets.ReadSecret(ctx, in)
	if apperr.Is(err, apperr.NotFound) {
		return nil, apperr.New(apperr.FailedPrecondition, "the active credential's value is missing from the secret store: update the integration's secret or rotate it").
			WithReason("SECRET_MISSING")
	}
	if err != nil {
		return nil, err
	}
	creds := verify.Credentials{Cloud: string(t.Cloud), Org: in.Org.String(), TenantID: t.EntraTenantID.String(), ClientID: in.ClientID.String(), Secret: secret}
	if active, ok := in.Active(); ok && active.Type == integration.CredentialCertificate {
		// A certificate's private key: tokens by client assertion, as checks.
		creds.Secret, creds.Certificate = "", secret
	}
	mc, err := msCredentials(creds)
	if err != nil {
		return nil, err
	}
	sess, err := s.ms.NewSession(mc)
	if err != nil {
		return nil, err
	}
	return tokenSource{sess}, nil
}

func (s tokenSessions) SharedFingerprint(ctx context.Context, in integration.Integration) (string, bool) {
	if in.Mode != sharedapp.ModeShared {
		return "", false
	}
	at, ok := s.secrets.SecretChangeTime(ctx, in)
	if !ok {
		return "", false
	}
	return at.UTC().Format(time.RFC3339Nano), true
}

type tokenSource struct{ s *microsoft.Session }

func (t tokenSource) AccessToken(ctx context.Context, api token.API) (token.Token, error) {
	a, ok := msAPIs[api]
	if !ok {
		return token.Token{}, fmt.Errorf("API %q has no Microsoft adapter equivalent", api)
	}
	v, exp, scope, err := t.s.AccessToken(ctx, a)
	if err != nil {
		return token.Token{}, err
	}
	return token.Token{Value: v, ExpiresOn: exp, Scope: scope}, nil
}
