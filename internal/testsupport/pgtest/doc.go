// Package pgtest gives tests a real, throwaway PostgreSQL database each.
//
// A test binary gets its Postgres server from DZCONNECT_TEST_DATABASE_URL (a
// superuser URL, as written by `scripts/services.sh up .run/test`), or, when that
// is unset, starts its own cluster (initdb with trust auth on 127.0.0.1 and a
// free port, durability off, run as an unprivileged user when root) for the
// lifetime of the binary. Wire it up once per package:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// or, when the package also needs other services (see vaulttest):
//
//	func TestMain(m *testing.M) {
//		stopPG, err := pgtest.Setup()
//		...
//		code := m.Run()
//		stopPG()
//		os.Exit(code)
//	}
//
// Each test then calls NewDB, which clones a fresh database from a migrated
// template: the template dz_tmpl_<hash> is created once per distinct set of
// migrations (the hash covers every file of the migrations fs.FS), under a
// Postgres advisory lock so test binaries running in parallel against the same
// server do not race, and every test gets `create database ... template ...`
// (tens of milliseconds) that is dropped again at t.Cleanup. Tests using
// different databases are fully isolated and may run with t.Parallel.
package pgtest
