package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
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
// Secret destructions are destroy_secret River jobs (gc), run only by the
// workers a test starts (gcWorker).
type crashFixture struct {
	db      *postgres.DB
	gc      jobs.SecretGC
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
	ins, err := jobs.NewInserter(pool)
	if err != nil {
		t.Fatal(err)
	}
	gc := jobs.NewSecretGC(ins)
	ctx := context.Background()
	o, err := organization.NewService(db, db, db, db, gc).CreateOrganization(ctx, organization.Organization{ID: uuid.Must(uuid.NewV7()), DisplayName: "Crash"}, idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := tenant.NewService(db, db, db, db).CreateTenant(ctx, tenant.Tenant{Org: o.ID, ID: uuid.Must(uuid.NewV7()), EntraTenantID: uuid.New(), Cloud: tenant.CloudGlobal, DisplayName: "T"}, idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	return crashFixture{db: db, gc: gc, secrets: secrets, env: env, org: o.ID, tenant: tn.ID}
}

func (f crashFixture) input() integration.Integration {
	return integration.Integration{Org: f.org, Tenant: f.tenant, Kind: integration.KindDefender, ClientID: uuid.New()}
}

// service runs the use cases on store and secrets, with the fixture's
// database for everything else.
func (f crashFixture) service(store integration.Store, secrets integration.SecretStore) *integration.Service {
	svc := integration.NewService(integration.Deps{Tx: f.db, Store: store, Secrets: secrets, Keys: f.db, Audit: f.db, GC: f.gc,
		Log: slog.New(slog.DiscardHandler)})
	svc.UseVerifier(storedVerifier{secrets})
	return svc
}

// storedVerifier stands in for Microsoft in these Postgres and Vault crash
// tests (fallback_test.go tries secrets against msftsim): a new secret
// verifies when its value reads back from Vault.
type storedVerifier struct{ secrets integration.SecretStore }

func (v storedVerifier) TryCredential(ctx context.Context, _, _ uuid.UUID, c integration.Credential) (integration.Trial, error) {
	if _, err := v.secrets.ReadClientSecret(ctx, c.SecretPath, c.SecretVersion); err != nil {
		return integration.Trial{}, err
	}
	return integration.Trial{Outcome: integration.StateHealthy}, nil
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

// queuedDestructions lists the paths of the destroy_secret jobs not yet
// completed, sorted.
func (f crashFixture) queuedDestructions(t *testing.T) []string {
	t.Helper()
	rows, err := f.db.Pool().Query(context.Background(),
		`select args->>'path' from river_job where kind = 'destroy_secret' and state <> 'completed' order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// gcWorker is a replica's River client running the destroy_secret worker,
// and the outcome of every attempt it makes.
type gcWorker struct {
	client *river.Client[pgx.Tx]
	events <-chan *river.Event
	stop   func()
}

// startGC starts a River client that destroys secrets with d.
func (f crashFixture) startGC(t *testing.T, d jobs.Destroyer) *gcWorker {
	t.Helper()
	q, err := jobs.New(f.db.Pool(), f.db, jobs.Config{NoChecks: true, DisableSchedule: true}, f.db, nil,
		slog.New(slog.DiscardHandler), jobs.SecretGCExtension(d))
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := q.Client().Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	w := &gcWorker{client: q.Client(), events: events, stop: func() {
		once.Do(func() {
			cancel()
			ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
			defer done()
			_ = q.Stop(ctx)
		})
	}}
	t.Cleanup(w.stop)
	return w
}

// next waits for the outcome of the worker's next destroy_secret attempt
// and returns it with the job's path.
func (w *gcWorker) next(t *testing.T) (*river.Event, string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.events:
			if ev.Job.Kind != (jobs.DestroySecretArgs{}).Kind() {
				continue
			}
			var args jobs.DestroySecretArgs
			if err := json.Unmarshal(ev.Job.EncodedArgs, &args); err != nil {
				t.Fatal(err)
			}
			return ev, args.Path
		case <-timeout:
			t.Fatal("no destroy_secret attempt finished within 30s")
		}
	}
}

// completed waits until n destroy_secret jobs completed, failing on any
// other outcome, and returns their paths, sorted.
func (w *gcWorker) completed(t *testing.T, n int) []string {
	t.Helper()
	var paths []string
	for range n {
		ev, path := w.next(t)
		if ev.Kind != river.EventKindJobCompleted {
			t.Fatalf("destroy_secret of %s: %s, %v", path, ev.Kind, ev.Job.Errors)
		}
		paths = append(paths, path)
	}
	slices.Sort(paths)
	return paths
}

// unreachableVault is a Vault client pointed at a closed port.
func unreachableVault(t *testing.T, mount string) *vault.Store {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := vault.New(context.Background(), vault.Config{Addr: addr, Token: "unused", Mount: mount})
	if err != nil {
		t.Fatal(err)
	}
	return s
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
	// The reaper leaves finished integrations alone.
	if n, err := svc.ReapPending(ctx, 0); err != nil || n != 0 {
		t.Fatalf("reaper = %d, %v", n, err)
	}
	if q := f.queuedDestructions(t); len(q) != 0 {
		t.Fatalf("destructions queued for a finished integration: %v", q)
	}
	if _, err := svc.ReadSecret(ctx, got); err != nil {
		t.Fatalf("reaper touched a live secret: %v", err)
	}
}

// TestCrashAfterVaultWriteAbandoned: when no retry comes, the reaper rolls
// the create back: the row goes, and the destroy_secret job it queued
// destroys the secret in Vault.
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
	if n, err := f.service(f.db, f.secrets).ReapPending(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("reaper within TTL = %d, %v", n, err)
	}
	if n, err := f.service(f.db, f.secrets).ReapPending(ctx, 0); err != nil || n != 1 {
		t.Fatalf("reaper = %d, %v; want 1 reaped", n, err)
	}
	if q := f.queuedDestructions(t); !slices.Equal(q, []string{path}) {
		t.Fatalf("queued destructions %v, want [%s]", q, path)
	}
	f.startGC(t, f.secrets).completed(t, 1)
	if v, err := f.secrets.CurrentVersion(ctx, path); err != nil || v != 0 {
		t.Fatalf("secret still in Vault: version %d, %v", v, err)
	}
	if q := f.queuedDestructions(t); len(q) != 0 {
		t.Fatalf("destructions left: %v", q)
	}
	for _, table := range []string{"integrations", "credentials", "idempotency_keys"} {
		var n int
		if err := f.db.Pool().QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s has %d rows (%v), want 0", table, n, err)
		}
	}
}

// TestDestroyRetriedWhenVaultFails: a delete while Vault is unreachable
// leaves the destruction queued; the destroy_secret job fails while Vault
// stays unreachable, is kept for a later retry, and destroys the secret
// once Vault is back.
func TestDestroyRetriedWhenVaultFails(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(f.db, f.secrets)
	in, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "doomed~Secret.Value_1234567890abcdefgh", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	path := activePath(t, in)
	broken := unreachableVault(t, f.env.Mount)
	if err := f.service(f.db, broken).Delete(ctx, f.org, in.ID, 0); err != nil {
		t.Fatalf("delete must succeed even when Vault fails: %v", err)
	}
	if _, err := f.secrets.ReadClientSecret(ctx, path, 1); err != nil {
		t.Fatalf("secret should still be there before the job ran: %v", err)
	}

	// A replica whose Vault is unreachable: the attempt fails and the job
	// waits for its retry.
	down := f.startGC(t, broken)
	ev, got := down.next(t)
	if ev.Kind != river.EventKindJobFailed || got != path {
		t.Fatalf("attempt on %s: %s, want %s failed", got, ev.Kind, path)
	}
	down.stop()
	job, err := down.client.JobGet(ctx, ev.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != rivertype.JobStateRetryable || job.Attempt != 1 || !job.ScheduledAt.After(time.Now()) {
		t.Fatalf("after the failed attempt: state %s, attempt %d, scheduled %v; want retryable later", job.State, job.Attempt, job.ScheduledAt)
	}
	if _, err := f.secrets.ReadClientSecret(ctx, path, 1); err != nil {
		t.Fatalf("secret should still be there after the failed attempt: %v", err)
	}

	// Vault is back: the retry (brought forward instead of waiting out
	// the backoff) destroys the secret.
	up := f.startGC(t, f.secrets)
	if _, err := up.client.JobRetry(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if got := up.completed(t, 1); !slices.Equal(got, []string{path}) {
		t.Fatalf("completed %v, want [%s]", got, path)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, path); v != 0 {
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

// TestSlowCreateReapedLeavesNoSecret: a create rolled back by the reaper
// while its secret was being written (the secret reached Vault after its
// row was reaped) queues that secret's destruction, and the job destroys
// it.
func TestSlowCreateReapedLeavesNoSecret(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(reapingStore{f.db, f.service(f.db, f.secrets)}, f.secrets)
	_, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "slow~Secret.Value_1234567890abcdefghijk", idempotency.Key{})
	if !apperr.Is(err, apperr.Aborted) {
		t.Fatalf("create = %v, want Aborted", err)
	}
	queued := f.queuedDestructions(t)
	if len(queued) != 1 {
		t.Fatalf("queued destructions %v, want the slow create's secret", queued)
	}
	f.startGC(t, f.secrets).completed(t, len(queued))
	if q := f.queuedDestructions(t); len(q) != 0 {
		t.Fatalf("destructions left: %v", q)
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

// TestFailingDestructionBacksOff: a destruction that fails is retried later
// with backoff (River's retryable state, the shared retry policy) and does
// not hold up the others.
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
	}
	// The failing one is queued first.
	for _, p := range paths {
		if err := f.db.InTx(ctx, func(ctx context.Context, tx uow.Tx) error { return f.gc.QueueDestroy(ctx, tx, f.org, p) }); err != nil {
			t.Fatal(err)
		}
	}
	w := f.startGC(t, failingDestroy{f.secrets, paths[0]})
	outcome := map[string]*river.Event{}
	for range 2 {
		ev, p := w.next(t)
		outcome[p] = ev
	}
	if ev := outcome[paths[1]]; ev == nil || ev.Kind != river.EventKindJobCompleted {
		t.Fatalf("the destruction behind a failing one: %v", ev)
	}
	if v, _ := f.secrets.CurrentVersion(ctx, paths[1]); v != 0 {
		t.Fatal("the destruction behind a failing one did not run")
	}
	ev := outcome[paths[0]]
	if ev == nil || ev.Kind != river.EventKindJobFailed {
		t.Fatalf("the failing destruction: %v", ev)
	}
	job, err := w.client.JobGet(ctx, ev.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Retried later, not now: at least the policy's first delay away.
	if job.State != rivertype.JobStateRetryable || job.Attempt != 1 || len(job.Errors) != 1 ||
		job.ScheduledAt.Before(job.Errors[0].At.Add(jobs.RetryBase)) {
		t.Fatalf("failing job: state %s, attempt %d, errors %v, scheduled %v", job.State, job.Attempt, job.Errors, job.ScheduledAt)
	}
	if v, err := f.secrets.CurrentVersion(ctx, paths[0]); err != nil || v != 1 {
		t.Fatalf("the failing path's secret: version %d, %v", v, err)
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
	if n, err := f.service(f.db, f.secrets).ReapPending(ctx, -time.Hour); err != nil || n != 1 {
		t.Fatalf("reaper = %d, %v; want the pending credential reaped", n, err)
	}
	if got := f.startGC(t, f.secrets).completed(t, 1); !slices.Equal(got, []string{pending}) {
		t.Fatalf("destroyed %v, want the pending credential's secret %s", got, pending)
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

// TestSecretRotations: each new secret is a new credential; once it is
// verified, the one it replaces is removed (its secret's destruction
// queued in the same transaction: customer-managed, docs/credentials.md);
// a stale etag writes nothing.
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
	if states[integration.CredentialActive] != 1 || states[integration.CredentialRemoved] != 1 || len(rotated.Credentials) != 2 {
		t.Fatalf("after one rotation: %v", states)
	}
	if q := f.queuedDestructions(t); !slices.Equal(q, []string{activePath(t, in)}) {
		t.Fatalf("after one rotation: destructions queued %v, want the replaced credential's", q)
	}
	// A stale etag is refused before anything is written.
	if _, err := svc.Update(ctx, f.org, in.ID, in.Version, keep, "three~Secret.Value_1234567890abcdefghijk"); !apperr.Is(err, apperr.Aborted) {
		t.Fatalf("stale update = %v, want Aborted", err)
	}
	var pending int
	if err := f.db.Pool().QueryRow(ctx, `select count(*) from credentials where state = 'pending'`).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("after a refused update: %d pending credentials, %v", pending, err)
	}
	if q := f.queuedDestructions(t); len(q) != 1 {
		t.Fatalf("after a refused update: destructions queued %v", q)
	}
	// A second rotation removes the active credential too.
	again, err := svc.Update(ctx, f.org, in.ID, rotated.Version, keep, "four~Secret.Value_1234567890abcdefghijk")
	if err != nil {
		t.Fatal(err)
	}
	states = map[integration.CredentialState]int{}
	for _, c := range again.Credentials {
		states[c.State]++
	}
	if states[integration.CredentialActive] != 1 || states[integration.CredentialRemoved] != 2 {
		t.Fatalf("after two rotations: %v", states)
	}
	want := []string{activePath(t, in), activePath(t, rotated)}
	slices.Sort(want)
	if got := f.startGC(t, f.secrets).completed(t, 2); !slices.Equal(got, want) {
		t.Fatalf("destroyed %v, want the removed credentials' secrets %v", got, want)
	}
	for _, p := range want {
		if v, _ := f.secrets.CurrentVersion(ctx, p); v != 0 {
			t.Fatalf("the removed credential's secret at %s survived", p)
		}
	}
	if v, err := svc.ReadSecret(ctx, again); err != nil || v != "four~Secret.Value_1234567890abcdefghijk" {
		t.Fatalf("active secret = %q, %v", v, err)
	}
}

// TestSecretOutboxMovedToJobs: destructions a previous version left in the
// secret_destructions outbox become destroy_secret jobs at start-up (once,
// even when the move runs again) and destroy their secrets.
func TestSecretOutboxMovedToJobs(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	svc := f.service(f.db, f.secrets)
	var paths []string
	for range 2 {
		in, err := svc.CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "queued~Secret.Value_1234567890abcdefgh", idempotency.Key{})
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, activePath(t, in))
	}
	slices.Sort(paths)
	// What the previous version wrote (the same path twice: queued by a
	// delete and again by a retry).
	for _, p := range append(paths, paths[0]) {
		if _, err := f.db.Pool().Exec(ctx, `insert into secret_destructions (organization_id, secret_path) values ($1, $2)`, f.org, p); err != nil {
			t.Fatal(err)
		}
	}
	ins, err := jobs.NewInserter(f.db.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := jobs.MoveSecretOutbox(ctx, f.db, f.db, ins); err != nil || n != 3 {
		t.Fatalf("moved %d, %v; want 3 rows", n, err)
	}
	if n, err := jobs.MoveSecretOutbox(ctx, f.db, f.db, ins); err != nil || n != 0 {
		t.Fatalf("second move: %d, %v; want nothing left", n, err)
	}
	if q := f.queuedDestructions(t); !slices.Equal(q, paths) {
		t.Fatalf("queued %v, want %v (one job per path)", q, paths)
	}
	if got := f.startGC(t, f.secrets).completed(t, 2); !slices.Equal(got, paths) {
		t.Fatalf("destroyed %v, want %v", got, paths)
	}
	for _, p := range paths {
		if v, _ := f.secrets.CurrentVersion(ctx, p); v != 0 {
			t.Fatalf("secret at %s survived: version %d", p, v)
		}
	}
}

// gatedVerifier is storedVerifier that announces each trial (the secret it
// tries) and holds it until the test releases that secret.
type gatedVerifier struct {
	secrets integration.SecretStore
	arrived chan string
	release map[string]chan struct{}
}

func (v gatedVerifier) TryCredential(ctx context.Context, _, _ uuid.UUID, c integration.Credential) (integration.Trial, error) {
	secret, err := v.secrets.ReadClientSecret(ctx, c.SecretPath, c.SecretVersion)
	if err != nil {
		return integration.Trial{}, err
	}
	v.arrived <- secret
	<-v.release[secret]
	return integration.Trial{Outcome: integration.StateHealthy}, nil
}

// TestConcurrentSecretReplacementsWithoutEtag (issue 11 item 12l): two
// secret replacements without an etag, both tried before either is
// activated: the first to activate wins; the later one is refused with
// Aborted (CONCURRENT_UPDATE) instead of silently replacing the secret the
// first caller was just told is active, and its own secret is discarded.
func TestConcurrentSecretReplacementsWithoutEtag(t *testing.T) {
	t.Parallel()
	f := newCrashFixture(t)
	ctx := context.Background()
	in, err := f.service(f.db, f.secrets).CreateCustomerManaged(ctx, f.input(), integration.CredentialMeta{}, "old~Secret.Value_1234567890abcdefghijklm", idempotency.Key{})
	if err != nil {
		t.Fatal(err)
	}
	const first, second = "first~Secret.Value_1234567890abcdefghijk", "second~Secret.Value_1234567890abcdefghij"
	gate := gatedVerifier{secrets: f.secrets, arrived: make(chan string, 2),
		release: map[string]chan struct{}{first: make(chan struct{}), second: make(chan struct{})}}
	svc := f.service(f.db, f.secrets)
	svc.UseVerifier(gate)
	keep := func(*integration.Integration, *integration.CredentialMeta) error { return nil }
	type result struct {
		in  integration.Integration
		err error
	}
	results := map[string]chan result{first: make(chan result, 1), second: make(chan result, 1)}
	for _, s := range []string{first, second} {
		go func() {
			out, err := svc.Update(ctx, f.org, in.ID, 0, keep, s)
			results[s] <- result{out, err}
		}()
	}
	// Both are being tried before either is activated.
	for range 2 {
		<-gate.arrived
	}
	close(gate.release[first])
	won := <-results[first]
	if won.err != nil {
		t.Fatalf("first replacement = %v", won.err)
	}
	close(gate.release[second])
	lost := <-results[second]
	var ae *apperr.Error
	if !errors.As(lost.err, &ae) || ae.Kind != apperr.Aborted || ae.Reason != "CONCURRENT_UPDATE" {
		t.Fatalf("second replacement = %v, want Aborted CONCURRENT_UPDATE", lost.err)
	}
	got, err := svc.Get(ctx, f.org, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != won.in.Version || activePath(t, got) != activePath(t, won.in) {
		t.Fatalf("after the refused replacement: %+v, want the first replacement's integration unchanged", got)
	}
	if v, err := svc.ReadSecret(ctx, got); err != nil || v != first {
		t.Fatal("the active secret is not the first replacement's", err)
	}
	var pending, credentials int
	if err := f.db.Pool().QueryRow(ctx, `select count(*) filter (where state = 'pending'), count(*) from credentials`).Scan(&pending, &credentials); err != nil {
		t.Fatal(err)
	}
	if pending != 0 || credentials != 2 {
		t.Fatalf("%d pending of %d credentials, want none pending of 2 (the old one removed, the first active)", pending, credentials)
	}
	// The old credential's and the refused secret's destructions are queued.
	if q := f.queuedDestructions(t); len(q) != 2 || !slices.Contains(q, activePath(t, in)) {
		t.Fatalf("destructions queued %v, want the old credential's and the refused secret's", q)
	}
}
