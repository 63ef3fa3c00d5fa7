// Package stack runs a whole dzconnect server in-process for tests: a fresh
// Postgres database cloned from the migrated template, a fresh Vault KV v2
// mount, the real gRPC server and REST gateway on loopback ports, and
// captured JSON logs. Tests talk to it through the generated gRPC clients
// or plain HTTP, exactly as users do.
package stack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/app"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/server"
	"github.com/dropzoneai/dzconnect/internal/testsupport/pgtest"
	"github.com/dropzoneai/dzconnect/internal/testsupport/vaulttest"
	"github.com/dropzoneai/dzconnect/migrations"
)

// Main runs a package's tests with Postgres and Vault available, then
// runs cleanups (before the services stop).
func Main(m *testing.M, cleanups ...func()) {
	pgDown, err := pgtest.Setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
	vDown, err := vaulttest.Setup()
	if err != nil {
		pgDown()
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	vDown()
	pgDown()
	os.Exit(code)
}

// Migrate is the pgtest migration callback for dzconnect's schema.
func Migrate(ctx context.Context, url string) error {
	return postgres.Migrate(ctx, url, slog.New(slog.DiscardHandler))
}

// NewDB returns a fresh migrated database.
func NewDB(t testing.TB) (string, *pgxpool.Pool) {
	return pgtest.NewDB(t, migrations.FS, Migrate)
}

// Logs collects the server's log output.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Stack is a running server.
type Stack struct {
	Conn     *grpc.ClientConn
	HTTPURL  string // e.g. http://127.0.0.1:34567
	GRPCAddr string
	// InternalURL is the internal listener (/metrics, pprof, reflection,
	// readiness details), e.g. http://127.0.0.1:34568.
	InternalURL string
	AdminKey    string
	DatabaseURL string
	DB          *pgxpool.Pool
	Vault       *vaulttest.Env
	Logs        *Logs
	Args        []string

	stopOnce sync.Once
	stop     func() error
}

// Stop shuts the server down gracefully (as on SIGTERM) and returns what
// it returned; later calls, and the test's cleanup, do nothing more.
func (s *Stack) Stop() error {
	var err error
	s.stopOnce.Do(func() { err = s.stop() })
	return err
}

// Options tune Start.
type Options struct {
	// ExtraArgs are appended to the serve flags.
	ExtraArgs []string
	// DatabaseURL and Vault reuse another stack's stores (several replicas).
	DatabaseURL string
	Vault       *vaulttest.Env
	// AppRole makes the server log in to Vault with AppRole, not a token.
	AppRole *vaulttest.AppRole
	// SpanProcessor records the server's spans (tracetest.NewSpanRecorder()).
	SpanProcessor sdktrace.SpanProcessor
}

// Start runs a server for the test; it stops at t.Cleanup.
func Start(t testing.TB, opts ...Options) *Stack {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s := &Stack{Logs: &Logs{}}
	if o.DatabaseURL != "" {
		s.DatabaseURL, s.Vault = o.DatabaseURL, o.Vault
		pool, err := pgxpool.New(context.Background(), o.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s.DB = pool
	} else {
		s.DatabaseURL, s.DB = NewDB(t)
		s.Vault = vaulttest.New(t)
	}
	s.AdminKey, _, _ = auth.NewKey()
	vaultAuth := []string{"--vault-token", s.Vault.Token}
	if o.AppRole != nil {
		vaultAuth = []string{"--vault-role-id", o.AppRole.RoleID, "--vault-secret-id", o.AppRole.SecretID, "--vault-approle-mount", o.AppRole.Mount}
	}
	s.Args = append(append([]string{
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--internal-addr", "127.0.0.1:0",
		"--database-url", s.DatabaseURL, "--migrate-on-start=false",
		"--vault-addr", s.Vault.Addr, "--vault-mount", s.Vault.Mount,
		"--admin-key", s.AdminKey, "--log-level", "debug", "--shutdown-timeout", "5s", "--jobs=false",
		// Request rate limits off: tests and benchmarks call as fast as
		// they can; the rate limit tests turn them on in ExtraArgs.
		"--rate-limit-org-rps=0", "--rate-limit-key-rps=0",
		// Two warm connections, not the default ten: tests start many
		// stacks side by side.
		"--database-min-conns=2",
	}, vaultAuth...), o.ExtraArgs...)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan server.Addrs, 1)
	done := make(chan error, 1)
	var appOpts []app.Option
	if o.SpanProcessor != nil {
		appOpts = append(appOpts, app.WithSpanProcessor(o.SpanProcessor))
	}
	go func() {
		done <- app.Serve(ctx, s.Args, s.Logs, func(a server.Addrs) { started <- a }, appOpts...)
	}()
	select {
	case a := <-started:
		s.GRPCAddr, s.HTTPURL = a.GRPC, "http://"+a.HTTP
		if a.Internal != "" {
			s.InternalURL = "http://" + a.Internal
		}
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v\nlogs:\n%s", err, s.Logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("server did not start within 30s\nlogs:\n%s", s.Logs.String())
	}
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s.Conn = conn
	s.stop = func() error {
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		conn.Close()
		if err := s.Stop(); err != nil {
			t.Errorf("server stopped with error: %v", err)
		}
	})
	return s
}

// Ctx returns a context that authenticates with key.
func Ctx(t testing.TB, key string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// Dial returns a gRPC connection of its own to the stack (not the shared
// Conn), as a separate client program would have; closed when t ends.
func (s *Stack) Dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Admin returns a service-admin context.
func (s *Stack) Admin(t testing.TB) context.Context { return Ctx(t, s.AdminKey) }

// Clients bundles the generated clients.
type Clients struct {
	Orgs         v1.OrganizationServiceClient
	Keys         v1.ApiKeyServiceClient
	Tenants      v1.TenantServiceClient
	Integrations v1.IntegrationServiceClient
	Audit        v1.AuditServiceClient
	Catalog      v1.CatalogServiceClient
}

// Clients returns gRPC clients on the stack.
func (s *Stack) Clients() Clients {
	return Clients{
		Orgs:         v1.NewOrganizationServiceClient(s.Conn),
		Keys:         v1.NewApiKeyServiceClient(s.Conn),
		Tenants:      v1.NewTenantServiceClient(s.Conn),
		Integrations: v1.NewIntegrationServiceClient(s.Conn),
		Audit:        v1.NewAuditServiceClient(s.Conn),
		Catalog:      v1.NewCatalogServiceClient(s.Conn),
	}
}

// Org is an organization with one key per role.
type Org struct {
	Name                             string
	Admin, Operator, Viewer          string // API keys
	AdminCtx, OperatorCtx, ViewerCtx context.Context
}

// NewOrg creates an organization and a key of each role.
func (s *Stack) NewOrg(t testing.TB, displayName string) Org {
	t.Helper()
	c := s.Clients()
	o, err := c.Orgs.CreateOrganization(s.Admin(t), &v1.CreateOrganizationRequest{Organization: &v1.Organization{DisplayName: displayName}})
	if err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	org := Org{Name: o.GetOrganization().GetName()}
	for role, dst := range map[v1.Role]*string{v1.Role_ROLE_ADMIN: &org.Admin, v1.Role_ROLE_OPERATOR: &org.Operator, v1.Role_ROLE_VIEWER: &org.Viewer} {
		k, err := c.Keys.CreateApiKey(s.Admin(t), &v1.CreateApiKeyRequest{Parent: org.Name, ApiKey: &v1.ApiKey{DisplayName: role.String(), Role: role}})
		if err != nil {
			t.Fatalf("CreateApiKey: %v", err)
		}
		*dst = k.GetSecret()
	}
	org.AdminCtx, org.OperatorCtx, org.ViewerCtx = Ctx(t, org.Admin), Ctx(t, org.Operator), Ctx(t, org.Viewer)
	return org
}

// StartSim starts an in-process msftsim whose clock is frozen at the
// current time (it moves only through Admin().AdvanceClock), with its
// endpoints.json and CA written to a temporary directory.
func StartSim(t testing.TB) *msftsim.Sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := msftsim.Start(ctx, msftsim.Options{StateDir: t.TempDir(), Seed: 1, Now: time.Now()})
	if err != nil {
		cancel()
		t.Fatalf("starting msftsim: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = sim.Close()
	})
	return sim
}

// SimArgs points a server at sim.
func SimArgs(sim *msftsim.Sim) []string {
	return []string{"--microsoft-endpoints-file", SimEndpointsFile(sim)}
}

// SimEndpointsFile is the endpoints.json sim wrote (its CA file included),
// as a deployment would configure it.
func SimEndpointsFile(sim *msftsim.Sim) string {
	return filepath.Join(filepath.Dir(sim.Endpoints().CAFile), "endpoints.json")
}

// SimClient is a Microsoft client configured for sim the way a server is
// (for tests that assemble services themselves).
func SimClient(t testing.TB, sim *msftsim.Sim) *microsoft.Client {
	t.Helper()
	clouds, err := microsoft.LoadEndpointsFile(SimEndpointsFile(sim))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := microsoft.New(microsoft.Config{Clouds: clouds})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}
