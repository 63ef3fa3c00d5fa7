package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stall"
	"github.com/dropzoneai/dzconnect/internal/testsupport/vaulttest"
)

// TestVaultStalled: with Vault paused (its connections accept bytes and
// answer nothing), a call that needs it fails Unavailable naming Vault
// after --vault-timeout, well before the caller's deadline; /readyz says
// Vault is the one; once Vault answers again, so does the call (issue 11
// item 9).
func TestVaultStalled(t *testing.T) {
	t.Parallel()
	dbURL, _ := stack.NewDB(t)
	env := vaulttest.New(t)
	u, err := url.Parse(env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := stall.New(t, u.Host)
	proxied := *env
	proxied.Addr = "http://" + proxy.Addr()
	s := stack.Start(t, stack.Options{DatabaseURL: dbURL, Vault: &proxied, ExtraArgs: []string{"--vault-timeout", "2s"}})
	org := s.NewOrg(t, "Stalled Vault")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	// The same request_id throughout: a Vault timeout is ambiguous (the
	// write may have landed), so the error says to retry with it.
	requestID := uuid.NewString()
	create := func(ctx context.Context) error {
		_, err := s.Clients().Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{Parent: tenant.GetName(), RequestId: requestID,
			Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: "00000000-0000-0000-0000-0000000000aa"}},
			ClientSecret: "stall~Secret.Value_1234567890abcdefghij"})
		return err
	}

	proxy.Pause()
	ctx, cancel := context.WithTimeout(org.OperatorCtx, 30*time.Second)
	defer cancel()
	err = create(ctx)
	st := wantCode(t, err, codes.Unavailable)
	if !strings.Contains(st.Message(), "Vault") {
		t.Fatalf("Unavailable without naming Vault: %q", st.Message())
	}
	if ctx.Err() != nil {
		t.Fatal("the call ran into the caller's 30s deadline instead of Vault's timeout")
	}
	// The public /readyz says only "not ready"; the internal one names
	// Vault.
	resp, err := http.Get(s.HTTPURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var terse map[string]any
	err = json.NewDecoder(resp.Body).Decode(&terse)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || terse["status"] != "not ready" || len(terse) != 1 {
		t.Fatalf("public /readyz with Vault stalled: %d %v %v", resp.StatusCode, terse, err)
	}
	resp, err = http.Get(s.InternalURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status       string
		Dependencies map[string]struct{ Status, Error string }
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || ready.Dependencies["vault"].Status != "unavailable" ||
		ready.Dependencies["vault"].Error == "" || ready.Dependencies["postgres"].Status != "ok" {
		t.Fatalf("internal /readyz with Vault stalled: %d %+v %v", resp.StatusCode, ready, err)
	}

	proxy.Resume()
	if err := create(org.OperatorCtx); err != nil {
		t.Fatalf("the create retried once Vault answers again: %v", err)
	}
	if resp, err := http.Get(s.HTTPURL + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz once Vault answers again: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestPostgresStalled: with Postgres paused (connections accept bytes and
// answer nothing, the idle pooled ones included), a call fails Unavailable
// naming Postgres after --database-timeout, well before the caller's
// deadline; /readyz says Postgres is the one (Vault answers); once
// Postgres answers again, so does the call (issue 11 item 9).
func TestPostgresStalled(t *testing.T) {
	t.Parallel()
	dbURL, _ := stack.NewDB(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := stall.New(t, u.Host)
	u.Host = proxy.Addr()
	s := stack.Start(t, stack.Options{DatabaseURL: u.String(), Vault: vaulttest.New(t), ExtraArgs: []string{"--database-timeout", "2s"}})
	org := s.NewOrg(t, "Stalled Postgres")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	get := func(ctx context.Context) error {
		_, err := s.Clients().Tenants.GetTenant(ctx, &v1.GetTenantRequest{Name: tenant.GetName()})
		return err
	}

	proxy.Pause()
	ctx, cancel := context.WithTimeout(org.OperatorCtx, 30*time.Second)
	defer cancel()
	st := wantCode(t, get(ctx), codes.Unavailable)
	if !strings.Contains(st.Message(), "Postgres") {
		t.Fatalf("Unavailable without naming Postgres: %q", st.Message())
	}
	if ctx.Err() != nil {
		t.Fatal("the call ran into the caller's 30s deadline instead of the statement's")
	}
	// The internal /readyz names Postgres (and not Vault).
	resp, err := http.Get(s.InternalURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status       string
		Dependencies map[string]struct{ Status, Error string }
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || ready.Dependencies["postgres"].Status != "unavailable" ||
		ready.Dependencies["vault"].Status != "ok" {
		t.Fatalf("internal /readyz with Postgres stalled: %d %+v %v", resp.StatusCode, ready, err)
	}

	proxy.Resume()
	if err := get(org.OperatorCtx); err != nil {
		t.Fatalf("the call once Postgres answers again: %v", err)
	}
}
