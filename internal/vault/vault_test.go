package vault_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/testsupport/vaulttest"
	"github.com/dropzoneai/dzconnect/internal/vault"
)

func TestMain(m *testing.M) { vaulttest.Main(m) }

func newStore(t *testing.T) (*vault.Store, *vaulttest.Env) {
	env := vaulttest.New(t)
	s, err := vault.New(context.Background(), vault.Config{Addr: env.Addr, Token: env.Token, Mount: env.Mount})
	if err != nil {
		t.Fatal(err)
	}
	return s, env
}

func TestCheckAndSetVersionsAndDestroy(t *testing.T) {
	ctx := context.Background()
	s, env := newStore(t)
	const p = "organizations/o/integrations/i/client-secret"
	v1, err := s.PutClientSecret(ctx, p, "first", 0)
	if err != nil || v1 != 1 {
		t.Fatalf("first write: %d %v", v1, err)
	}
	if _, err := s.PutClientSecret(ctx, p, "conflict", 0); !apperr.Is(err, apperr.Aborted) {
		t.Fatalf("a stale check-and-set must be Aborted, got %v", err)
	}
	v2, err := s.PutClientSecret(ctx, p, "second", 1)
	if err != nil || v2 != 2 {
		t.Fatalf("second write: %d %v", v2, err)
	}
	if got, err := s.ReadClientSecret(ctx, p, 1); err != nil || got != "first" {
		t.Fatalf("version 1 = %q %v", got, err)
	}
	if got, err := s.ReadClientSecret(ctx, p, 2); err != nil || got != "second" {
		t.Fatalf("version 2 = %q %v", got, err)
	}
	// A version never written, a path never written, a field not there:
	// NotFound, naming no secret.
	if _, err := s.ReadClientSecret(ctx, p, 7); !apperr.Is(err, apperr.NotFound) || strings.Contains(err.Error(), "first") {
		t.Fatalf("version 7: %v, want NotFound", err)
	}
	if _, err := s.ReadClientSecret(ctx, p+"-none", 1); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("missing path: %v, want NotFound", err)
	}
	if _, err := env.KV().Put(ctx, "dzconnect/"+p+"-other", map[string]any{"other": "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadClientSecret(ctx, p+"-other", 1); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("no client_secret field: %v, want NotFound", err)
	}
	m, err := env.KV().GetMetadata(ctx, "dzconnect/"+p)
	if err != nil || m.MaxVersions != vault.MaxVersions || !m.CASRequired {
		t.Fatalf("metadata %+v %v", m, err)
	}
	if cur, err := s.CurrentVersion(ctx, p); err != nil || cur != 2 {
		t.Fatalf("current %d %v", cur, err)
	}
	// A first write's metadata is written beside its data: a path left
	// with metadata alone (the data write failed) takes the next first
	// write as version 1.
	const bare = "organizations/o/integrations/j/client-secret"
	if err := env.KV().PutMetadata(ctx, "dzconnect/"+bare, api.KVMetadataPutInput{MaxVersions: vault.MaxVersions, CASRequired: true}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.PutClientSecret(ctx, bare, "after metadata", 0); err != nil || v != 1 {
		t.Fatalf("first write over metadata alone: %d %v", v, err)
	}
	if err := s.Destroy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.CurrentVersion(ctx, p); err != nil || cur != 0 {
		t.Fatalf("after destroy: %d %v", cur, err)
	}
	if _, err := s.ReadClientSecret(ctx, p, 1); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("read after destroy: %v", err)
	}
	if err := s.Destroy(ctx, p); err != nil {
		t.Fatalf("destroying a missing path must succeed: %v", err)
	}
}

func TestErrorsNeverCarryTheSecret(t *testing.T) {
	ctx := context.Background()
	env := vaulttest.New(t)
	s, err := vault.New(ctx, vault.Config{Addr: env.Addr, Token: "wrong-token", Mount: env.Mount})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.PutClientSecret(ctx, "p", "CANARY-secret-value", 0)
	if err == nil || strings.Contains(err.Error(), "CANARY") {
		t.Fatalf("error %v", err)
	}
}

func newAppRoleStore(t *testing.T, ttl, maxTTL string) (*vault.Store, *vaulttest.Env) {
	t.Helper()
	env := vaulttest.New(t)
	ar := env.EnableAppRole(t, env.Mount)
	if ttl != "" {
		if _, err := env.Client.Logical().Write("auth/"+ar.Mount+"/role/"+ar.Role, map[string]any{
			"token_policies": []string{ar.Policy}, "token_ttl": ttl, "token_max_ttl": maxTTL}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := vault.New(context.Background(), vault.Config{Addr: env.Addr, AppRoleID: ar.RoleID, AppRoleSecretID: ar.SecretID,
		AppRoleMount: ar.Mount, Mount: env.Mount})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, env
}

// TestOneReloginInFlight: a burst of requests refused with a revoked
// token costs one AppRole login, not one per request (issue 11 item 12f).
func TestOneReloginInFlight(t *testing.T) {
	ctx := context.Background()
	s, env := newAppRoleStore(t, "", "")
	const p = "organizations/o/integrations/burst/client-secret"
	if _, err := s.PutClientSecret(ctx, p, "value", 0); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Auth().Token().RevokeTreeWithContext(ctx, s.Token()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Go(func() {
			if got, err := s.ReadClientSecret(ctx, p, 1); err != nil || got != "value" {
				errs <- fmt.Errorf("read after revocation: %q %v", got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Logins(); n != 2 {
		t.Fatalf("%d AppRole logins for 30 refused requests (after the first login), want 2", n)
	}
}

// TestTokenKeptAlive: an AppRole token is renewed before its TTL ends and,
// at its max TTL, replaced by a new login before requests are refused.
func TestTokenKeptAlive(t *testing.T) {
	ctx := context.Background()
	s, _ := newAppRoleStore(t, "2s", "5s")
	first := s.Token()
	deadline := time.Now().Add(30 * time.Second)
	for s.Logins() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no new login 30s after a token with a 5s max TTL (logins %d)", s.Logins())
		}
		// Requests meanwhile never meet an expired token: the renewals
		// kept it valid past its 2s TTL.
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("ping with the renewed token: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // pacing the pings; the renewal runs on its own
	}
	if s.Token() == first {
		t.Fatal("the token did not change at the new login")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
