package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Environment variables naming an existing Vault to use instead of starting one.
const (
	EnvAddr  = "DZCONNECT_TEST_VAULT_ADDR"
	EnvToken = "DZCONNECT_TEST_VAULT_TOKEN"
	// EnvVaultBin names the vault binary to start when no Vault is given.
	EnvVaultBin = "DZCONNECT_VAULT_BIN"
)

var state struct {
	mu     sync.Mutex
	addr   string
	token  string
	server *devServer // the dev server this process started, if any
}

// Main runs the tests of a package with a Vault available and exits the process;
// call it from TestMain. It starts a dev server unless DZCONNECT_TEST_VAULT_ADDR
// is set, and stops it after the tests.
func Main(m *testing.M) {
	teardown, err := Setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vaulttest: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	teardown()
	os.Exit(code)
}

// Setup makes a Vault available to New: the one named by DZCONNECT_TEST_VAULT_ADDR
// and DZCONNECT_TEST_VAULT_TOKEN, or a `vault server -dev` it starts. The returned
// teardown stops that server; call it after m.Run.
func Setup() (teardown func(), err error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.addr != "" {
		return nil, errors.New("vaulttest.Setup called twice")
	}
	if addr, token, ok, err := fromEnv(); err != nil || ok {
		state.addr, state.token = addr, token
		return func() {}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := startServer(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting vault server -dev (or set %s and %s): %w", EnvAddr, EnvToken, err)
	}
	state.server, state.addr, state.token = s, s.addr, s.token
	return func() {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "vaulttest: stopping vault: %v\n", err)
		}
	}, nil
}

func fromEnv() (addr, token string, ok bool, err error) {
	addr, token = os.Getenv(EnvAddr), os.Getenv(EnvToken)
	switch {
	case addr == "" && token == "":
		return "", "", false, nil
	case addr == "" || token == "":
		return "", "", false, fmt.Errorf("vaulttest: set both %s and %s, or neither", EnvAddr, EnvToken)
	}
	return addr, token, true, nil
}

func serverAddr() (addr, token string, err error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.addr == "" {
		addr, token, ok, err := fromEnv()
		if err != nil {
			return "", "", err
		}
		if !ok {
			return "", "", fmt.Errorf("vaulttest: no Vault: set %s and %s (make test does, via scripts/services.sh) "+
				"or call vaulttest.Main(m) / vaulttest.Setup() from TestMain", EnvAddr, EnvToken)
		}
		state.addr, state.token = addr, token
	}
	return state.addr, state.token, nil
}

// Env is one test's view of Vault.
type Env struct {
	// Addr is the Vault address, e.g. http://127.0.0.1:8200.
	Addr string
	// Token is a root token.
	Token string
	// Client is authenticated with Token. It belongs to the test: changing its
	// token or namespace does not affect other tests.
	Client *api.Client
	// Mount is the path of the test's own KV v2 secrets engine, without slashes,
	// e.g. "t-testrotate-5f3a9c1e". Store under it; Client.KVv2(Mount) reads it.
	Mount string
}

// New returns a root client and a freshly enabled KV v2 mount for this test; the
// mount and everything in it is deleted at t.Cleanup.
func New(t testing.TB) *Env {
	t.Helper()
	addr, token, err := serverAddr()
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Addr: addr, Token: token, Client: client, Mount: uniquePath("t", t.Name())}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.Sys().MountWithContext(ctx, e.Mount, &api.MountInput{
		Type:        "kv",
		Description: "vaulttest: " + t.Name(),
		Options:     map[string]string{"version": "2"},
	}); err != nil {
		t.Fatalf("vaulttest: enabling KV v2 at %s: %v", e.Mount, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := client.Sys().UnmountWithContext(ctx, e.Mount); err != nil {
			t.Errorf("vaulttest: disabling %s: %v", e.Mount, err)
		}
	})
	if err := waitKVReady(ctx, client, e.Mount); err != nil {
		t.Fatal(err)
	}
	return e
}

// KV returns the KV v2 helper of the test's mount.
func (e *Env) KV() *api.KVv2 { return e.Client.KVv2(e.Mount) }

// NewClient returns a client for addr authenticated with token, in the root
// namespace, whatever VAULT_ADDR, VAULT_TOKEN or VAULT_NAMESPACE say.
func NewClient(addr, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vaulttest: vault client config: %w", cfg.Error)
	}
	cfg.Address = addr
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vaulttest: vault client: %w", err)
	}
	client.SetToken(token)
	client.ClearNamespace()
	return client, nil
}

// waitKVReady polls until a just-enabled KV v2 engine answers: it finishes an
// internal upgrade step in the background and refuses requests until then.
func waitKVReady(ctx context.Context, client *api.Client, mount string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := client.Logical().ReadWithContext(ctx, mount+"/config")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vaulttest: KV v2 at %s not ready: %w", mount, err)
		case <-tick.C:
		}
	}
}

// uniquePath is prefix-<sanitized name>-<random>, a valid and unique mount path.
func uniquePath(prefix, name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 32 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return prefix + "-" + b.String() + "-" + randomHex(4)
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}
