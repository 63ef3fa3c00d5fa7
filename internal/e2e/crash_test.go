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
	"github.com/dropzoneai/dzconnect/internal/vault"
)

// crashingStore simulates the process dying right after the secret reached
// Vault: FinishCreateIntegration never runs.
type crashingStore struct {
	*postgres.DB
	crash bool
}

var errCrash = errors.New("simulated crash")

func (c *crashingStore) FinishCreateIntegration(ctx context.Context, org, id uuid.UUID, v int64) (integration.Integration, error) {
	if c.crash {
		return integration.Integration{}, errCrash
	}
	return c.DB.FinishCreateIntegration(ctx, org, id, v)
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

func (f crashFixture) visible(t *testing.T) int {
	rows, err := f.db.ListIntegrations(context.Background(), f.org, integration.Filter{}, page.Request{Size: 100})
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
	svc := integration.NewService(store, f.secrets, slog.New(slog.DiscardHandler))
	key := idempotency.Key{RequestID: uuid.New(), Hash: []byte("same request")}
	const secret = "crash~Secret.Value_1234567890abcdefghijk"

	if _, err := svc.CreateCustomerManaged(ctx, f.input(), secret, key); !errors.Is(err, errCrash) {
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
	if v, err := f.secrets.ReadClientSecret(ctx, integration.SecretPath(f.org, id), 1); err != nil || v != secret {
		t.Fatalf("secret after the crash = %q, %v", v, err)
	}

	store.crash = false
	got, err := svc.CreateCustomerManaged(ctx, f.input(), secret, key)
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
	svc := integration.NewService(&crashingStore{DB: f.db, crash: true}, f.secrets, slog.New(slog.DiscardHandler))
	key := idempotency.Key{RequestID: uuid.New(), Hash: []byte("r")}
	if _, err := svc.CreateCustomerManaged(ctx, f.input(), "abandoned~Secret.Value_1234567890abcd", key); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	var id uuid.UUID
	if err := f.db.Pool().QueryRow(ctx, `select id from integrations where pending`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	// Younger than the TTL: kept, a retry may still come.
	if r, err := svc.Janitor(ctx, time.Hour); err != nil || r.Reaped != 0 {
		t.Fatalf("janitor within TTL = %+v, %v", r, err)
	}
	r, err := svc.Janitor(ctx, 0)
	if err != nil || r.Reaped != 1 || r.Destroyed != 1 {
		t.Fatalf("janitor = %+v, %v; want 1 reaped and 1 destroyed", r, err)
	}
	if v, err := f.secrets.CurrentVersion(ctx, integration.SecretPath(f.org, id)); err != nil || v != 0 {
		t.Fatalf("secret still in Vault: version %d, %v", v, err)
	}
	for _, table := range []string{"integrations", "idempotency_keys", "secret_destructions"} {
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
	svc := integration.NewService(f.db, f.secrets, slog.New(slog.DiscardHandler))
	in, err := svc.CreateCustomerManaged(ctx, f.input(), "doomed~Secret.Value_1234567890abcdefgh", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	broken, err := vault.New(ctx, vault.Config{Addr: f.env.Addr, Token: "not-a-valid-token", Mount: f.env.Mount})
	if err != nil {
		t.Fatal(err)
	}
	if err := integration.NewService(f.db, broken, slog.New(slog.DiscardHandler)).Delete(ctx, f.org, in.ID, 0); err != nil {
		t.Fatalf("delete must succeed even when Vault fails: %v", err)
	}
	if _, err := f.secrets.ReadClientSecret(ctx, in.SecretPath, 1); err != nil {
		t.Fatalf("secret should still be there before the janitor: %v", err)
	}
	r, err := svc.Janitor(ctx, time.Hour)
	if err != nil || r.Destroyed != 1 {
		t.Fatalf("janitor = %+v, %v", r, err)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, in.SecretPath); v != 0 {
		t.Fatalf("secret survived: version %d", v)
	}
}

// reapingStore runs the janitor's reaping right before the create is
// finished, as if the create had outlived the pending TTL.
type reapingStore struct{ *postgres.DB }

func (r reapingStore) FinishCreateIntegration(ctx context.Context, org, id uuid.UUID, v int64) (integration.Integration, error) {
	if _, err := r.DB.ReapPendingIntegrations(ctx, time.Now().Add(time.Hour)); err != nil {
		return integration.Integration{}, err
	}
	return r.DB.FinishCreateIntegration(ctx, org, id, v)
}

// TestSlowCreateReapedLeavesNoSecret: a create rolled back by the janitor
// while its secret was being written queues that secret's destruction.
func TestSlowCreateReapedLeavesNoSecret(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := integration.NewService(reapingStore{f.db}, f.secrets, slog.New(slog.DiscardHandler))
	_, err := svc.CreateCustomerManaged(ctx, f.input(), "slow~Secret.Value_1234567890abcdefghijk", idempotency.Key{})
	if !apperr.Is(err, apperr.Aborted) {
		t.Fatalf("create = %v, want Aborted", err)
	}
	r, err := integration.NewService(f.db, f.secrets, slog.New(slog.DiscardHandler)).Janitor(ctx, time.Hour)
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
	svc := integration.NewService(f.db, f.secrets, slog.New(slog.DiscardHandler))
	var paths []string
	for range 2 {
		in, err := svc.CreateCustomerManaged(ctx, f.input(), "doomed~Secret.Value_1234567890abcdefgh", idempotency.Key{})
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, in.SecretPath)
		if err := f.db.QueueSecretDestruction(ctx, f.org, in.SecretPath); err != nil {
			t.Fatal(err)
		}
	}
	janitor := integration.NewService(f.db, failingDestroy{f.secrets, paths[0]}, slog.New(slog.DiscardHandler))
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
