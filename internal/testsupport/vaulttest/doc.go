// Package vaulttest gives tests a real Vault with a KV v2 mount of their own.
//
// A test binary uses the Vault at DZCONNECT_TEST_VAULT_ADDR with the token in
// DZCONNECT_TEST_VAULT_TOKEN (as written by `scripts/services.sh up .run/test`),
// or, when those are unset, starts `vault server -dev` on 127.0.0.1 and a free
// port for the lifetime of the binary. The binary is DZCONNECT_VAULT_BIN, else
// `vault` on PATH, else the build of scripts/ensure-vault.sh
// (${DZ_TOOLS_DIR:-$HOME/.cache/dzconnect/tools}/vault-1.21.0/vault). Wire it up
// once per package:
//
//	func TestMain(m *testing.M) { vaulttest.Main(m) }
//
// (or call Setup from a TestMain that also starts other services, see pgtest).
//
// Each test calls New, which enables a fresh KV v2 secrets engine at a path unique
// to the test (disabled again at t.Cleanup), so tests are isolated and may run
// with t.Parallel. Env.EnableAppRole adds an AppRole auth method whose role may
// use a given KV mount, for code that logs in the way the service does.
package vaulttest
