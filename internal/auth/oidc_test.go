package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/testsupport/oidctest"
)

const aud = "dzconnect-test"

type logBuf struct{ bytes.Buffer }

func newIdentities(t *testing.T, cfg auth.IdentityConfig) (*auth.Identities, *logBuf) {
	t.Helper()
	var buf logBuf
	id, err := auth.NewIdentities(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return id, &buf
}

func issuerConfig(is *oidctest.Issuer) auth.IssuerConfig {
	return auth.IssuerConfig{Issuer: is.URL, Audience: aud, CAFile: is.CAFile}
}

// TestTokenRefusals: every bad token is the same Unauthenticated, and no
// message names the check that failed.
func TestTokenRefusals(t *testing.T) {
	is := oidctest.Start(t)
	other := oidctest.Start(t) // an issuer dzconnect does not trust
	org := uuid.New()
	id, logs := newIdentities(t, auth.IdentityConfig{Issuers: []auth.IssuerConfig{issuerConfig(is)}})
	ctx := context.Background()
	good := map[string]any{"dzconnect_org": org.String(), "dzconnect_role": "operator"}

	p, err := id.VerifyToken(ctx, is.Token(t, is.Claims("svc-a", aud, time.Minute, good)))
	if err != nil {
		t.Fatalf("good token: %v", err)
	}
	if p.Org != org || p.Role != auth.RoleOperator || p.Actor() != "oidc:"+is.URL+"#svc-a" || p.ServiceAdmin {
		t.Fatalf("principal %+v actor %s", p, p.Actor())
	}

	stranger := oidctest.NewKey(t, is.Current().ID) // same kid, another key
	wrongIss := is.Claims("svc-a", aud, time.Minute, good)
	wrongIss["iss"] = other.URL
	forgedIss := is.Claims("svc-a", aud, time.Minute, good)
	forgedIss["iss"] = is.URL + "/"
	noExp := is.Claims("svc-a", aud, time.Minute, good)
	delete(noExp, "exp")
	for name, tok := range map[string]string{
		"expired":             is.Token(t, is.Claims("svc-a", aud, -time.Minute, good)),
		"wrong audience":      is.Token(t, is.Claims("svc-a", "someone-else", time.Minute, good)),
		"no expiry":           is.Token(t, noExp),
		"untrusted issuer":    other.Token(t, wrongIss),
		"issuer not exact":    is.Token(t, forgedIss),
		"alg none":            oidctest.Unsigned(t, is.Claims("svc-a", aud, time.Minute, good)),
		"wrong key same kid":  oidctest.Sign(t, stranger, is.Claims("svc-a", aud, time.Minute, good)),
		"wrong key other kid": oidctest.Sign(t, oidctest.NewKey(t, "made-up"), is.Claims("svc-a", aud, time.Minute, good)),
		"HS256 with the public key": oidctest.HMAC(t, is.Current().ID, oidctest.PublicPEM(is.Current()),
			is.Claims("svc-a", aud, time.Minute, good)),
		"tampered payload": func() string {
			tok := is.Token(t, is.Claims("svc-a", aud, time.Minute, good))
			parts := strings.Split(tok, ".")
			evil := oidctest.Unsigned(t, is.Claims("svc-a", aud, time.Minute, map[string]any{"dzconnect_org": org.String(), "dzconnect_role": "admin"}))
			return parts[0] + "." + strings.Split(evil, ".")[1] + "." + parts[2]
		}(),
		"no org claim":      is.Token(t, is.Claims("svc-a", aud, time.Minute, map[string]any{"dzconnect_role": "admin"})),
		"role not allowed":  is.Token(t, is.Claims("svc-a", aud, time.Minute, map[string]any{"dzconnect_org": org.String(), "dzconnect_role": "root"})),
		"org not an ID":     is.Token(t, is.Claims("svc-a", aud, time.Minute, map[string]any{"dzconnect_org": "acme", "dzconnect_role": "admin"})),
		"no subject":        is.Token(t, is.Claims("", aud, time.Minute, good)),
		"not a JWT":         "eyJhbGciOiJSUzI1NiJ9.e30",
		"garbage signature": is.Token(t, is.Claims("svc-a", aud, time.Minute, good))[:40] + ".x.y",
	} {
		_, err := id.VerifyToken(ctx, tok)
		if !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("%s: %v, want Unauthenticated", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "invalid, expired or unrecognized bearer token") {
			t.Errorf("%s: message %q tells more than the one refusal", name, msg)
		}
	}
	if strings.Contains(logs.String(), "eyJ") {
		t.Error("a token reached the log")
	}
}

// TestSubjectMapping: a mapped subject wins over claims; claims can be
// turned off; allowed roles cap the claim; a mapping can name the service
// admin.
func TestSubjectMapping(t *testing.T) {
	is := oidctest.Start(t)
	orgA, orgB := uuid.New(), uuid.New()
	ic := issuerConfig(is)
	ic.Roles = []auth.Role{auth.RoleViewer}
	ic.Subjects = []auth.Mapping{
		{Subject: "deployer", Organization: "organizations/" + orgA.String(), Role: auth.RoleAdmin},
		{Subject: "platform", ServiceAdmin: true},
	}
	id, _ := newIdentities(t, auth.IdentityConfig{Issuers: []auth.IssuerConfig{ic}})
	ctx := context.Background()
	claims := map[string]any{"dzconnect_org": orgB.String(), "dzconnect_role": "viewer"}

	p, err := id.VerifyToken(ctx, is.Token(t, is.Claims("deployer", aud, time.Minute, claims)))
	if err != nil || p.Org != orgA || p.Role != auth.RoleAdmin {
		t.Fatalf("mapped subject: %+v %v", p, err)
	}
	if p, err = id.VerifyToken(ctx, is.Token(t, is.Claims("platform", aud, time.Minute, nil))); err != nil || !p.ServiceAdmin {
		t.Fatalf("service-admin subject: %+v %v", p, err)
	}
	if p, err = id.VerifyToken(ctx, is.Token(t, is.Claims("anyone", aud, time.Minute, claims))); err != nil || p.Org != orgB || p.Role != auth.RoleViewer {
		t.Fatalf("claims: %+v %v", p, err)
	}
	claims["dzconnect_role"] = "admin" // not among the issuer's roles
	if _, err = id.VerifyToken(ctx, is.Token(t, is.Claims("anyone", aud, time.Minute, claims))); !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("role over the issuer's cap: %v", err)
	}

	ic.DisableClaims = true
	id, _ = newIdentities(t, auth.IdentityConfig{Issuers: []auth.IssuerConfig{ic}})
	claims["dzconnect_role"] = "viewer"
	if _, err = id.VerifyToken(ctx, is.Token(t, is.Claims("anyone", aud, time.Minute, claims))); !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("claims with disable_claims: %v", err)
	}
}

// TestKeyRotation: a token signed by a newly published key verifies (the
// unknown kid refreshes the JWKS); once the old key is withdrawn, its
// tokens stop verifying; made-up kids refresh the JWKS only within the
// rate limit.
func TestKeyRotation(t *testing.T) {
	is := oidctest.Start(t)
	id, _ := newIdentities(t, auth.IdentityConfig{Issuers: []auth.IssuerConfig{issuerConfig(is)}})
	ctx := context.Background()
	claims := is.Claims("svc", aud, time.Hour, map[string]any{"dzconnect_org": uuid.NewString(), "dzconnect_role": "viewer"})
	old := is.Current()
	if _, err := id.VerifyToken(ctx, is.Token(t, claims)); err != nil {
		t.Fatal(err)
	}
	if _, err := id.VerifyToken(ctx, is.Token(t, claims)); err != nil || is.JWKSFetches() != 1 {
		t.Fatalf("cached keys: %v, %d JWKS fetches, want 1", err, is.JWKSFetches())
	}

	is.Rotate(t, false) // the old key is withdrawn at once
	if _, err := id.VerifyToken(ctx, is.Token(t, claims)); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if n := is.JWKSFetches(); n != 2 {
		t.Fatalf("%d JWKS fetches after rotation, want 2", n)
	}
	if _, err := id.VerifyToken(ctx, oidctest.Sign(t, old, claims)); !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("token of the withdrawn key: %v", err)
	}

	// A flood of made-up kids: at most the bucket's burst of fetches.
	before := is.JWKSFetches()
	for i := range 50 {
		tok := oidctest.Sign(t, oidctest.Key{ID: "made-up-" + string(rune('a'+i%26)), Priv: old.Priv}, claims)
		if _, err := id.VerifyToken(ctx, tok); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	if n := is.JWKSFetches() - before; n > 5 {
		t.Fatalf("%d JWKS fetches for 50 made-up kids, want at most 5", n)
	}
}

// TestIssuerDown: an unreachable issuer is Unavailable (retry later), not
// Unauthenticated; once it answers, tokens verify.
func TestIssuerDown(t *testing.T) {
	is := oidctest.Start(t)
	is.SetDown(true)
	id, _ := newIdentities(t, auth.IdentityConfig{Issuers: []auth.IssuerConfig{issuerConfig(is)}})
	tok := is.Token(t, is.Claims("svc", aud, time.Hour, map[string]any{"dzconnect_org": uuid.NewString(), "dzconnect_role": "viewer"}))
	if _, err := id.VerifyToken(context.Background(), tok); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("issuer down: %v, want Unavailable", err)
	}
}

// TestIdentityConfigValidation names each bad entry.
func TestIdentityConfigValidation(t *testing.T) {
	_, err := auth.NewIdentities(auth.IdentityConfig{
		Issuers: []auth.IssuerConfig{{Issuer: "http://x"}, {Issuer: "https://a", Audience: "a", Roles: []auth.Role{"root"},
			Subjects: []auth.Mapping{{Subject: "s", Organization: "nope", Role: auth.RoleAdmin}}}},
		Certificates: []auth.Mapping{{Identity: "spiffe://x", Organization: uuid.NewString(), Role: "boss"},
			{Identity: "cn", ServiceAdmin: true, Role: auth.RoleAdmin}},
	}, slog.New(slog.DiscardHandler))
	for _, want := range []string{"issuers[0].issuer", "issuers[0].audience", "issuers[1].roles[0]", "issuers[1].subjects[0]: organization",
		"certificates[0]: role", "certificates[1]: service_admin"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
