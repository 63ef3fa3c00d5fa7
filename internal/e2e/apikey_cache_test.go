package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// cacheArgs give the key cache a TTL far longer than any test: whatever a
// replica stops accepting, it stops accepting through invalidation.
var cacheArgs = []string{"--api-key-cache-ttl", "10m"}

// keyCacheState is the api_key_cache entry of the internal /readyz.
type keyCacheState struct {
	Listening bool   `json:"listening"`
	Entries   int    `json:"entries"`
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	Bypassed  uint64 `json:"bypassed"`
	Flushes   uint64 `json:"flushes"`
	Listener  struct {
		Listening  bool   `json:"listening"`
		LastError  string `json:"last_error"`
		Reconnects int    `json:"reconnects"`
	} `json:"listener"`
}

func keyCache(t *testing.T, s *stack.Stack) keyCacheState {
	t.Helper()
	resp, err := http.Get(s.InternalURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Details struct {
			APIKeyCache keyCacheState `json:"api_key_cache"`
		} `json:"details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Details.APIKeyCache
}

// pollFor polls cond every 20ms until it holds or within runs out.
func pollFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// authenticates reports whether key is accepted by s (an organization
// read; any authenticated call would do), failing on anything but
// Unauthenticated.
func authenticates(t *testing.T, s *stack.Stack, key, org string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(stack.Ctx(t, key), 10*time.Second)
	defer cancel()
	_, err := s.Clients().Tenants.ListTenants(ctx, &v1.ListTenantsRequest{Parent: org})
	if err == nil {
		return true
	}
	wantCode(t, err, codes.Unauthenticated)
	return false
}

func newKey(t *testing.T, s *stack.Stack, adminCtx context.Context, org string, role v1.Role) *v1.CreateApiKeyResponse {
	t.Helper()
	k, err := s.Clients().Keys.CreateApiKey(adminCtx, &v1.CreateApiKeyRequest{Parent: org, ApiKey: &v1.ApiKey{DisplayName: "cached", Role: role}})
	if err != nil {
		t.Fatalf("CreateApiKey: %v", err)
	}
	return k
}

// twoReplicas starts two servers on one database, each with the key cache
// on, and waits until both listen for invalidations.
func twoReplicas(t *testing.T, extra ...string) (a, b *stack.Stack) {
	t.Helper()
	args := append(append([]string{}, cacheArgs...), extra...)
	a = stack.Start(t, stack.Options{ExtraArgs: args})
	b = stack.Start(t, stack.Options{DatabaseURL: a.DatabaseURL, Vault: a.Vault, ExtraArgs: args})
	for _, s := range []*stack.Stack{a, b} {
		pollFor(t, 10*time.Second, "listener established", func() bool { return keyCache(t, s).Listening })
	}
	return a, b
}

// TestAPIKeyCacheInvalidation (issue 11 item 10): a key deleted through
// replica A is refused by replica B within the notification's latency,
// far inside the 10-minute TTL; so is every key of an organization
// deleted through A; a new key works at once on both; B answered from its
// cache meanwhile.
func TestAPIKeyCacheInvalidation(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	org := a.NewOrg(t, "Key cache")

	// A new key works at once on both replicas (refusals are never
	// cached).
	k := newKey(t, a, org.AdminCtx, org.Name, v1.Role_ROLE_VIEWER)
	for _, s := range []*stack.Stack{b, a} {
		if !authenticates(t, s, k.GetSecret(), org.Name) {
			t.Fatal("a new key is refused")
		}
	}
	before := keyCache(t, b)
	for range 5 {
		if !authenticates(t, b, k.GetSecret(), org.Name) {
			t.Fatal("refused")
		}
	}
	after := keyCache(t, b)
	if after.Hits < before.Hits+5 {
		t.Fatalf("B looked the key up in Postgres: hits %d -> %d, misses %d -> %d", before.Hits, after.Hits, before.Misses, after.Misses)
	}

	// Deleted through A: refused by B well before the TTL.
	if _, err := a.Clients().Keys.DeleteApiKey(org.AdminCtx, &v1.DeleteApiKeyRequest{Name: k.GetApiKey().GetName()}); err != nil {
		t.Fatal(err)
	}
	took := pollFor(t, 10*time.Second, "B refuses the deleted key", func() bool { return !authenticates(t, b, k.GetSecret(), org.Name) })
	t.Logf("B refused the key deleted through A after %s (TTL 10m)", took)
	if authenticates(t, a, k.GetSecret(), org.Name) {
		t.Fatal("A accepts the key it deleted")
	}

	// An organization deleted through A: its keys go with it (cascade),
	// and B refuses them too.
	gone := a.NewOrg(t, "Key cache, deleted")
	for range 2 { // cached on B
		if !authenticates(t, b, gone.Viewer, gone.Name) {
			t.Fatal("refused")
		}
	}
	if _, err := a.Clients().Orgs.DeleteOrganization(a.Admin(t), &v1.DeleteOrganizationRequest{Name: gone.Name}); err != nil {
		t.Fatal(err)
	}
	pollFor(t, 10*time.Second, "B refuses the deleted organization's key", func() bool {
		return !authenticates(t, b, gone.Viewer, gone.Name)
	})
	// The other organization's keys are unaffected.
	if !authenticates(t, b, org.Viewer, org.Name) {
		t.Fatal("another organization's key is refused")
	}
}

// TestAPIKeyCacheListenerLost: while the replica's LISTEN connection is
// gone, notifications may be lost, so the cache is flushed and bypassed:
// a key deleted without any notification reaching the replica (triggers
// off for the delete, as if the notification had been lost) is served
// from the cache while the listener is up, and refused as soon as the
// listener's connection is killed; while it cannot reconnect, every call
// reads Postgres; once it has, the cache is used again. The cache never
// holds more than --api-key-cache-size keys.
func TestAPIKeyCacheListenerLost(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: append(append([]string{}, cacheArgs...), "--api-key-cache-size", "3")})
	pollFor(t, 10*time.Second, "listener established", func() bool { return keyCache(t, s).Listening })
	org := s.NewOrg(t, "Listener")
	ctx := context.Background()

	// Bounded: more keys used than the cache holds.
	for range 5 {
		k := newKey(t, s, org.AdminCtx, org.Name, v1.Role_ROLE_VIEWER)
		if !authenticates(t, s, k.GetSecret(), org.Name) {
			t.Fatal("refused")
		}
	}
	if st := keyCache(t, s); st.Entries > 3 {
		t.Fatalf("%d keys cached, --api-key-cache-size is 3", st.Entries)
	}

	k := newKey(t, s, org.AdminCtx, org.Name, v1.Role_ROLE_VIEWER)
	if !authenticates(t, s, k.GetSecret(), org.Name) {
		t.Fatal("refused")
	}
	// A lost notification: the key deleted with triggers off.
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "set local session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "delete from api_keys where key_prefix = $1", k.GetApiKey().GetKeyPrefix()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !authenticates(t, s, k.GetSecret(), org.Name) {
		t.Fatal("the cache did not serve the key (the test proves nothing)")
	}

	// Kill the listener's connection, and keep it from reconnecting.
	var db string
	if err := s.DB.QueryRow(ctx, "select current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	// A database's connections are switched off from another database.
	u, err := url.Parse(s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	other, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	allow := func(on bool) {
		if _, err := other.Exec(ctx, fmt.Sprintf("alter database %q with allow_connections %t", db, on)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	var killed int
	if err := s.DB.QueryRow(ctx, `select count(pg_terminate_backend(pid)) from pg_stat_activity
		where application_name = $1 and datname = current_database()`, postgres.APIKeyListenerName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("listeners killed: %d, %v", killed, err)
	}
	pollFor(t, 10*time.Second, "the replica refuses the key once its listener is gone", func() bool {
		return !authenticates(t, s, k.GetSecret(), org.Name)
	})
	st := keyCache(t, s)
	if st.Listening || st.Listener.Listening || st.Listener.LastError == "" || st.Entries != 0 {
		t.Fatalf("cache while the listener is down: %+v", st)
	}
	// Bypassed: every call reads Postgres, and works.
	before := st.Bypassed
	for range 3 {
		if !authenticates(t, s, org.Viewer, org.Name) {
			t.Fatal("refused while bypassed")
		}
	}
	if st := keyCache(t, s); st.Bypassed < before+3 || st.Entries != 0 {
		t.Fatalf("not bypassed while the listener is down: %+v", st)
	}

	// Reconnected: the cache serves again.
	allow(true)
	pollFor(t, 30*time.Second, "listener re-established", func() bool { return keyCache(t, s).Listening })
	before = keyCache(t, s).Hits
	for range 2 {
		if !authenticates(t, s, org.Viewer, org.Name) {
			t.Fatal("refused")
		}
	}
	if st := keyCache(t, s); st.Hits != before+1 || st.Entries != 1 || st.Listener.Reconnects == 0 || !st.Listener.Listening {
		t.Fatalf("cache after the listener reconnected (one miss, then one hit): %+v", st)
	}
}
