package vault_test

import (
	"context"
	"strings"
	"testing"

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
	m, err := env.KV().GetMetadata(ctx, "dzconnect/"+p)
	if err != nil || m.MaxVersions != vault.MaxVersions || !m.CASRequired {
		t.Fatalf("metadata %+v %v", m, err)
	}
	if cur, err := s.CurrentVersion(ctx, p); err != nil || cur != 2 {
		t.Fatalf("current %d %v", cur, err)
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
