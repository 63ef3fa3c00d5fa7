package vaulttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// AppRole is an AppRole auth method with one role, as the service logs in with it.
type AppRole struct {
	// Mount is the auth method's path: log in at auth/<Mount>/login.
	Mount string
	// Role is the role's name; Policy the name of its only policy.
	Role, Policy string
	// RoleID and SecretID are the login credentials.
	RoleID, SecretID string
}

// EnableAppRole enables an AppRole auth method at a path unique to the test with a
// role whose tokens may create, read, update, patch, delete and list everything
// under the KV v2 mount kvMount (usually e.Mount), and nothing else. The auth
// method and the policy are removed at t.Cleanup.
func (e *Env) EnableAppRole(t testing.TB, kvMount string) *AppRole {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := &AppRole{Mount: uniquePath("approle", t.Name()), Role: "dzconnect"}
	a.Policy = a.Mount + "-kv"
	sys := e.Client.Sys()

	policy := fmt.Sprintf(`path %q { capabilities = ["create", "read", "update", "patch", "delete", "list"] }`, kvMount+"/*")
	if err := sys.PutPolicyWithContext(ctx, a.Policy, policy); err != nil {
		t.Fatalf("vaulttest: writing policy %s: %v", a.Policy, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sys.DeletePolicyWithContext(ctx, a.Policy); err != nil {
			t.Errorf("vaulttest: deleting policy %s: %v", a.Policy, err)
		}
	})
	if err := sys.EnableAuthWithOptionsWithContext(ctx, a.Mount, &api.EnableAuthOptions{
		Type:        "approle",
		Description: "vaulttest: " + t.Name(),
	}); err != nil {
		t.Fatalf("vaulttest: enabling approle at %s: %v", a.Mount, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sys.DisableAuthWithContext(ctx, a.Mount); err != nil {
			t.Errorf("vaulttest: disabling auth %s: %v", a.Mount, err)
		}
	})

	rolePath := "auth/" + a.Mount + "/role/" + a.Role
	logical := e.Client.Logical()
	if _, err := logical.WriteWithContext(ctx, rolePath, map[string]any{
		"token_policies": []string{a.Policy},
		"token_ttl":      "1h",
		"token_max_ttl":  "4h",
	}); err != nil {
		t.Fatalf("vaulttest: creating role %s: %v", rolePath, err)
	}
	roleID, err := logical.ReadWithContext(ctx, rolePath+"/role-id")
	if err != nil || roleID == nil {
		t.Fatalf("vaulttest: reading %s/role-id: %v", rolePath, err)
	}
	secretID, err := logical.WriteWithContext(ctx, rolePath+"/secret-id", nil)
	if err != nil || secretID == nil {
		t.Fatalf("vaulttest: generating %s/secret-id: %v", rolePath, err)
	}
	var ok1, ok2 bool
	a.RoleID, ok1 = roleID.Data["role_id"].(string)
	a.SecretID, ok2 = secretID.Data["secret_id"].(string)
	if !ok1 || !ok2 || a.RoleID == "" || a.SecretID == "" {
		t.Fatalf("vaulttest: unexpected role-id/secret-id responses: %v / %v", roleID.Data, secretID.Data)
	}
	return a
}

// Login logs in with the AppRole credentials and returns a client holding the
// resulting token (limited to the role's policy).
func (e *Env) Login(t testing.TB, a *AppRole) *api.Client {
	t.Helper()
	client, err := NewClient(e.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	client.ClearToken()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	secret, err := client.Logical().WriteWithContext(ctx, "auth/"+a.Mount+"/login", map[string]any{
		"role_id":   a.RoleID,
		"secret_id": a.SecretID,
	})
	if err != nil {
		t.Fatalf("vaulttest: approle login at %s: %v", a.Mount, err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		t.Fatalf("vaulttest: approle login at %s returned no token", a.Mount)
	}
	client.SetToken(secret.Auth.ClientToken)
	return client
}
