package vaulttest

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewGivesIsolatedKVv2Mounts(t *testing.T) {
	envs := make(chan *Env, 2)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"one", "two"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := New(t)
				envs <- e
				mount, err := e.Client.Sys().GetMountWithContext(t.Context(), e.Mount)
				if err != nil {
					t.Fatal(err)
				}
				if mount.Type != "kv" || mount.Options["version"] != "2" {
					t.Fatalf("mount %s is type %q options %v, want kv version 2", e.Mount, mount.Type, mount.Options)
				}
				ctx := t.Context()
				for i := range 2 {
					if _, err := e.KV().Put(ctx, "tenants/x/client-secret", map[string]any{"value": name, "i": i}); err != nil {
						t.Fatal(err)
					}
				}
				got, err := e.KV().Get(ctx, "tenants/x/client-secret")
				if err != nil {
					t.Fatal(err)
				}
				if got.Data["value"] != name || got.VersionMetadata.Version != 2 {
					t.Fatalf("read %v version %d, want value %q version 2", got.Data, got.VersionMetadata.Version, name)
				}
			})
		}
	})
	close(envs)
	var mounts []string
	for e := range envs {
		mounts = append(mounts, e.Mount)
	}
	if len(mounts) != 2 || mounts[0] == mounts[1] {
		t.Fatalf("mounts %v, want two distinct", mounts)
	}
	// After the subtests' cleanup, their mounts are gone.
	e := New(t)
	all, err := e.Client.Sys().ListMountsWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if _, ok := all[m+"/"]; ok {
			t.Errorf("mount %s still enabled after its test finished", m)
		}
	}
}

func TestDevServerHasKVv2AtSecret(t *testing.T) {
	e := New(t)
	path := "vaulttest-" + randomHex(4)
	if _, err := e.Client.KVv2("secret").Put(t.Context(), path, map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.KVv2("secret").DeleteMetadata(t.Context(), path); err != nil {
		t.Fatal(err)
	}
}

func TestAppRoleLoginIsLimitedToItsMount(t *testing.T) {
	e := New(t)
	other := New(t)
	a := e.EnableAppRole(t, e.Mount)
	if a.RoleID == "" || a.SecretID == "" || !strings.HasPrefix(a.Mount, "approle-") {
		t.Fatalf("AppRole = %+v", a)
	}
	client := e.Login(t, a)
	if client.Token() == e.Token {
		t.Fatal("login returned the root token")
	}
	ctx := t.Context()
	if _, err := client.KVv2(e.Mount).Put(ctx, "integrations/i1", map[string]any{"client_secret": "s3cr3t"}); err != nil {
		t.Fatalf("approle token cannot write its mount: %v", err)
	}
	got, err := client.KVv2(e.Mount).Get(ctx, "integrations/i1")
	if err != nil || got.Data["client_secret"] != "s3cr3t" {
		t.Fatalf("approle token read %v, %v", got, err)
	}
	_, err = client.KVv2(other.Mount).Put(ctx, "integrations/i1", map[string]any{"client_secret": "x"})
	var respErr *api.ResponseError
	if !errors.As(err, &respErr) || respErr.StatusCode != http.StatusForbidden {
		t.Fatalf("write to another mount: err = %v, want 403", err)
	}

	// A wrong secret ID is refused.
	bad := *a
	bad.SecretID = "not-the-secret-id"
	anon, err := NewClient(e.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	anon.ClearToken()
	if _, err := anon.Logical().WriteWithContext(ctx, "auth/"+bad.Mount+"/login", map[string]any{
		"role_id": bad.RoleID, "secret_id": bad.SecretID,
	}); err == nil {
		t.Fatal("login with a wrong secret_id succeeded")
	}
}

func TestAppRoleRemovedAtCleanup(t *testing.T) {
	e := New(t)
	var a *AppRole
	t.Run("inner", func(t *testing.T) {
		a = e.EnableAppRole(t, e.Mount)
	})
	auths, err := e.Client.Sys().ListAuthWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auths[a.Mount+"/"]; ok {
		t.Fatalf("auth method %s still enabled after its test finished", a.Mount)
	}
	policy, err := e.Client.Sys().GetPolicyWithContext(t.Context(), a.Policy)
	if err != nil {
		t.Fatal(err)
	}
	if policy != "" {
		t.Fatalf("policy %s still present after its test finished", a.Policy)
	}
}

func TestUniquePath(t *testing.T) {
	p := uniquePath("t", "TestX/Sub Case")
	if !strings.HasPrefix(p, "t-testx_sub_case-") || len(p) != len("t-testx_sub_case-")+8 {
		t.Fatalf("uniquePath = %q", p)
	}
}
