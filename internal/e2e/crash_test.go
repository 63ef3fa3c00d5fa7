package e2e

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/testsupport/vaulttest"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/vault"
)

// crashingStore simulates the process dying right after a secret reached
// Vault: the transaction that activates the credential never commits, and
// nothing after it (not even the cleanup of a failed update) runs.
type crashingStore struct {
	*postgres.DB
	crash bool
}

var errCrash = errors.New("simulated crash")

func (c *crashingStore) ActivateCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID, v int64) (integration.Credential, error) {
	if c.crash {
		return integration.Credential{}, errCrash
	}
	return c.DB.ActivateCredential(ctx, tx, org, id, v)
}

func (c *crashingStore) DeleteCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	if c.crash {
		return errCrash
	}
	return c.DB.DeleteCredential(ctx, tx, org, id)
}

// crashFixture is a tenant on a real database and a real Vault mount.
type crashFixture struct {
	db      *postgres.DB
	secrets *vault.Store
	env     *vaulttest.Env
	org     uuid.UUID
	tenant  uuid.UUID
}

func newCrashFixture(t *testing.T) crashFixture {
	_, pool := stack.NewDB(t)
	db := postgres.New(pool)
	env := vaulttest.New(t)
	secrets, err := vault.New(context.Background(), vault.Config{Addr: env.Addr, Token: env.Token, Mount: env.Mount})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o, err := organization.NewService(db, db, db, db, db).CreateOrganization(ctx, organization.Organization{ID: uuid.Must(uuid.NewV7()), DisplayName: "Crash"}, idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := tenant.NewService(db, db, db, db).CreateTenant(ctx, tenant.Tenant{Org: o.ID, ID: uuid.Must(uuid.NewV7()), EntraTenantID: uuid.New(), Cloud: tenant.CloudGlobal, DisplayName: "T"}, idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	return crashFixture{db: db, secrets: secrets, env: env, org: o.ID, tenant: tn.ID}
}

func (f crashFixture) input() integration.Integration {
	return integration.Integration{Org: f.org, Tenant: f.tenant, Kind: integration.KindDefender, ClientID: uuid.New()}
}

// service runs the use cases on store and secrets, with the fixture's
// database for everything else.
func (f crashFixture) service(store integration.Store, secrets integration.SecretStore) *integration.Service {
	return integration.NewService(integration.Deps{Tx: f.db, Store: store, Secrets: secrets, Keys: f.db, Audit: f.db, GC: f.db,
		Log: slog.New(slog.DiscardHandler)})
}

// pendingSecretPath is the Vault path of the one pending credential.
func (f crashFixture) pendingSecretPath(t *testing.T) string {
	t.Helper()
	var path string
	if err := f.db.Pool().QueryRow(context.Background(), `select secret_path from credentials where state = 'pending'`).Scan(&path); err != nil {
		t.Fatalf("pending credential: %v", err)
	}
	return path
}

func activePath(t *testing.T, in integration.Integration) string {
	t.Helper()
	c, ok := in.Active()
	if !ok {
		t.Fatalf("integration %v has no active credential", in.ID)
	}
	return c.SecretPath
}

func (f crashFixture) visible(t *testing.T) int {
	rows, err := f.db.ListIntegrations(context.Background(), f.db.Conn(), f.org, integration.Filter{}, page.Request{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// TestCrashAfterVaultWriteRetried: a crash between the Vault write and the
// Postgres write leaves nothing visible; the client's retry with the same
// request_id finishes the same integration, and its secret is there.
func TestCrashAfterVaultWriteRetried(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	store := &crashingStore{DB: f.db, crash: true}
	svc := f.service(store, f.secrets)
	key := idempotency.Key{RequestID: uuid.New(), Hash: []byte("same request")}
	const secret = "crash~Secret.Value_1234567890abcdefghijk"

	if _, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, secret, key); !errors.Is(err, errCrash) {
		t.Fatalf("create = %v, want the simulated crash", err)
	}
	if n := f.visible(t); n != 0 {
		t.Fatalf("%d integrations visible after the crash, want 0", n)
	}
	var id uuid.UUID
	if err := f.db.Pool().QueryRow(ctx, `select id from integrations where pending`).Scan(&id); err != nil {
		t.Fatalf("pending row: %v", err)
	}
	if _, err := svc.Get(ctx, f.org, id); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("Get of the pending row = %v, want NotFound", err)
	}
	if v, err := f.secrets.ReadClientSecret(ctx, f.pendingSecretPath(t), 1); err != nil || v != secret {
		t.Fatalf("secret after the crash = %q, %v", v, err)
	}

	store.crash = false
	got, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, secret, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Pending {
		t.Fatalf("retry created %v (pending %v), want the crashed row %v finished", got.ID, got.Pending, id)
	}
	if v, err := svc.ReadSecret(ctx, got); err != nil || v != secret {
		t.Fatalf("secret of the finished integration = %q, %v", v, err)
	}
	if n := f.visible(t); n != 1 {
		t.Fatalf("%d integrations visible, want 1", n)
	}
	// The janitor leaves finished integrations alone.
	if r, err := svc.Janitor(ctx, 0); err != nil || r.Reaped != 0 {
		t.Fatalf("janitor = %+v, %v", r, err)
	}
	if _, err := svc.ReadSecret(ctx, got); err != nil {
		t.Fatalf("janitor touched a live secret: %v", err)
	}
}

// TestCrashAfterVaultWriteAbandoned: when no retry comes, the janitor rolls
// the create back: the row goes, and the secret is destroyed in Vault.
func TestCrashAfterVaultWriteAbandoned(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(&crashingStore{DB: f.db, crash: true}, f.secrets)
	key := idempotency.Key{RequestID: uuid.New(), Hash: []byte("r")}
	if _, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "abandoned~Secret.Value_1234567890abcd", key); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	path := f.pendingSecretPath(t)
	// Younger than the TTL: kept, a retry may still come.
	if r, err := f.service(f.db, f.secrets).Janitor(ctx, time.Hour); err != nil || r.Reaped != 0 {
		t.Fatalf("janitor within TTL = %+v, %v", r, err)
	}
	r, err := f.service(f.db, f.secrets).Janitor(ctx, 0)
	if err != nil || r.Reaped != 1 || r.Destroyed != 1 {
		t.Fatalf("janitor = %+v, %v; want 1 reaped and 1 destroyed", r, err)
	}
	if v, err := f.secrets.CurrentVersion(ctx, path); err != nil || v != 0 {
		t.Fatalf("secret still in Vault: version %d, %v", v, err)
	}
	for _, table := range []string{"integrations", "credentials", "idempotency_keys", "secret_destructions"} {
		var n int
		if err := f.db.Pool().QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s has %d rows (%v), want 0", table, n, err)
		}
	}
}

// TestDestroyRetriedWhenVaultFails: a delete while Vault refuses leaves the
// destruction queued; the janitor finishes it once Vault is back.
func TestDestroyRetriedWhenVaultFails(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(f.db, f.secrets)
	in, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "doomed~Secret.Value_1234567890abcdefgh", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	broken, err := vault.New(ctx, vault.Config{Addr: f.env.Addr, Token: "not-a-valid-token", Mount: f.env.Mount})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.service(f.db, broken).Delete(ctx, f.org, in.ID, 0); err != nil {
		t.Fatalf("delete must succeed even when Vault fails: %v", err)
	}
	if _, err := f.secrets.ReadClientSecret(ctx, activePath(t, in), 1); err != nil {
		t.Fatalf("secret should still be there before the janitor: %v", err)
	}
	r, err := svc.Janitor(ctx, time.Hour)
	if err != nil || r.Destroyed != 1 {
		t.Fatalf("janitor = %+v, %v", r, err)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, activePath(t, in)); v != 0 {
		t.Fatalf("secret survived: version %d", v)
	}
}

// reapingStore runs the pending-row reaper (in its own transaction) right
// before the credential is activated, as if the create or update had
// outlived the pending TTL.
type reapingStore struct {
	*postgres.DB
	reaper *integration.Service
}

func (r reapingStore) ActivateCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID, v int64) (integration.Credential, error) {
	if _, err := r.reaper.ReapPending(ctx, -time.Hour); err != nil {
		return integration.Credential{}, err
	}
	return r.DB.ActivateCredential(ctx, tx, org, id, v)
}

// TestSlowCreateReapedLeavesNoSecret: a create rolled back by the janitor
// while its secret was being written queues that secret's destruction.
func TestSlowCreateReapedLeavesNoSecret(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(reapingStore{f.db, f.service(f.db, f.secrets)}, f.secrets)
	_, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "slow~Secret.Value_1234567890abcdefghijk", idempotency.Key{})
	if !apperr.Is(err, apperr.Aborted) {
		t.Fatalf("create = %v, want Aborted", err)
	}
	r, err := f.service(f.db, f.secrets).Janitor(ctx, time.Hour)
	if err != nil || r.Destroyed < 1 {
		t.Fatalf("janitor = %+v, %v", r, err)
	}
	var leftover int
	if err := f.db.Pool().QueryRow(ctx, `select count(*) from secret_destructions`).Scan(&leftover); err != nil || leftover != 0 {
		t.Fatalf("%d destructions left, %v", leftover, err)
	}
	keys, err := f.env.Client.Logical().List(f.env.Mount + "/metadata/dzconnect/organizations/" + f.org.String() + "/integrations")
	if err != nil || keys != nil {
		t.Fatalf("secrets left in Vault: %v %v", keys, err)
	}
}

// failingDestroy refuses to destroy one path (e.g. a prefix Vault's policy
// no longer allows) and passes everything else to Vault.
type failingDestroy struct {
	*vault.Store
	bad string
}

func (f failingDestroy) Destroy(ctx context.Context, p string) error {
	if p == f.bad {
		return errors.New("permission denied")
	}
	return f.Store.Destroy(ctx, p)
}

// TestFailingDestructionBacksOff: a destruction that keeps failing is
// retried later with backoff and does not hold up the others.
func TestFailingDestructionBacksOff(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(f.db, f.secrets)
	var paths []string
	for range 2 {
		in, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "doomed~Secret.Value_1234567890abcdefgh", idempotency.Key{})
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, activePath(t, in))
		if err := f.db.QueueSecretDestruction(ctx, f.org, activePath(t, in)); err != nil {
			t.Fatal(err)
		}
	}
	janitor := f.service(f.db, failingDestroy{f.secrets, paths[0]})
	r, err := janitor.Janitor(ctx, time.Hour)
	if err != nil || r.Destroyed != 1 {
		t.Fatalf("janitor = %+v, %v; want the good path destroyed", r, err)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, paths[1]); v != 0 {
		t.Fatal("the destruction behind a failing one did not run")
	}
	var attempts int
	var later bool
	if err := f.db.Pool().QueryRow(ctx, `select attempts, next_attempt_time > now() from secret_destructions where secret_path = $1`,
		paths[0]).Scan(&attempts, &later); err != nil || attempts != 1 || !later {
		t.Fatalf("failing entry: attempts %d, rescheduled %v, %v", attempts, later, err)
	}
	// Not due yet: the next pass leaves it alone.
	if r, err := janitor.Janitor(ctx, time.Hour); err != nil || r.Destroyed != 0 {
		t.Fatalf("second pass = %+v, %v", r, err)
	}
}

// TestCrashDuringSecretUpdate: a crash after the new secret reached Vault
// but before its credential was activated leaves the integration on its
// old credential; the reaper removes the pending credential and destroys
// its secret, and the old secret is untouched.
func TestCrashDuringSecretUpdate(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	const old = "old~Secret.Value_1234567890abcdefghijklm"
	in, err := f.service(f.db, f.secrets).CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, old, idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	svc := f.service(&crashingStore{DB: f.db, crash: true}, f.secrets)
	_, err = svc.Update(ctx, f.org, in.ID, in.Version, func(*integration.Integration, *integration.CredentialMeta) error { return nil },
		"new~Secret.Value_1234567890abcdefghijklm")
	if !errors.Is(err, errCrash) {
		t.Fatalf("update = %v, want the simulated crash", err)
	}
	pending := f.pendingSecretPath(t)
	if v, err := f.secrets.ReadClientSecret(ctx, pending, 1); err != nil || v != "new~Secret.Value_1234567890abcdefghijklm" {
		t.Fatalf("new secret after the crash = %q, %v", v, err)
	}
	got, err := svc.Get(ctx, f.org, in.ID)
	if err != nil || got.Version != in.Version || activePath(t, got) != activePath(t, in) {
		t.Fatalf("after the crash: %+v, %v; want the integration unchanged", got, err)
	}
	r, err := f.service(f.db, f.secrets).Janitor(ctx, -time.Hour)
	if err != nil || r.Reaped != 1 || r.Destroyed != 1 {
		t.Fatalf("janitor = %+v, %v; want the pending credential reaped and its secret destroyed", r, err)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, pending); v != 0 {
		t.Fatalf("the abandoned secret survived: version %d", v)
	}
	if v, err := f.service(f.db, f.secrets).ReadSecret(ctx, got); err != nil || v != old {
		t.Fatalf("old secret = %q, %v", v, err)
	}
	if n := f.visible(t); n != 1 {
		t.Fatalf("%d integrations visible, want 1", n)
	}
}

// TestSecretRotations: each new secret is a new credential; the one it
// replaces retires (its secret kept), the one retired before is removed
// (its secret's destruction queued in the same transaction); a stale etag
// writes nothing.
func TestSecretRotations(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(f.db, f.secrets)
	keep := func(*integration.Integration, *integration.CredentialMeta) error { return nil }
	in, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "one~Secret.Value_1234567890abcdefghijklm", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := svc.Update(ctx, f.org, in.ID, in.Version, keep, "two~Secret.Value_1234567890abcdefghijklm")
	if err != nil {
		t.Fatal(err)
	}
	states := map[integration.CredentialState]int{}
	for _, c := range rotated.Credentials {
		states[c.State]++
	}
	if states[integration.CredentialActive] != 1 || states[integration.CredentialRetiring] != 1 || len(rotated.Credentials) != 2 {
		t.Fatalf("after one rotation: %v", states)
	}
	// A stale etag is refused before anything is written.
	if _, err := svc.Update(ctx, f.org, in.ID, in.Version, keep, "three~Secret.Value_1234567890abcdefghijk"); !apperr.Is(err, apperr.Aborted) {
		t.Fatalf("stale update = %v, want Aborted", err)
	}
	var pending, queued int
	if err := f.db.Pool().QueryRow(ctx, `select (select count(*) from credentials where state = 'pending'),
		(select count(*) from secret_destructions)`).Scan(&pending, &queued); err != nil || pending != 0 || queued != 0 {
		t.Fatalf("after a refused update: %d pending credentials, %d destructions queued, %v", pending, queued, err)
	}
	// A second rotation removes the retiring credential and queues its
	// secret's destruction in the same transaction.
	again, err := svc.Update(ctx, f.org, in.ID, rotated.Version, keep, "four~Secret.Value_1234567890abcdefghijk")
	if err != nil {
		t.Fatal(err)
	}
	states = map[integration.CredentialState]int{}
	for _, c := range again.Credentials {
		states[c.State]++
	}
	if states[integration.CredentialActive] != 1 || states[integration.CredentialRetiring] != 1 || states[integration.CredentialRemoved] != 1 {
		t.Fatalf("after two rotations: %v", states)
	}
	r, err := svc.Janitor(ctx, time.Hour)
	if err != nil || r.Destroyed != 1 { // the removed credential's
		t.Fatalf("janitor = %+v, %v", r, err)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, activePath(t, in)); v != 0 {
		t.Fatal("the removed credential's secret survived")
	}
	if v, err := svc.ReadSecret(ctx, again); err != nil || v != "four~Secret.Value_1234567890abcdefghijk" {
		t.Fatalf("active secret = %q, %v", v, err)
	}
}
