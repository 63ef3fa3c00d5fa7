package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDatabaseURL names the environment variable holding a superuser URL
// (postgres://user@host:port/db) of an existing server to use instead of
// starting one.
const EnvDatabaseURL = "DZCONNECT_TEST_DATABASE_URL"

var state struct {
	mu       sync.Mutex
	adminURL string   // superuser URL of the server in use; "" until known
	cluster  *cluster // the cluster this process started, if any
	admin    *pgxpool.Pool
}

// Main runs the tests of a package with a Postgres server available and exits
// the process; call it from TestMain. It starts a cluster of its own unless
// DZCONNECT_TEST_DATABASE_URL is set, and stops it after the tests.
func Main(m *testing.M) {
	teardown, err := Setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	teardown()
	os.Exit(code)
}

// Setup makes a Postgres server available to NewDB and AdminURL: the one named
// by DZCONNECT_TEST_DATABASE_URL, or a throwaway cluster it starts. The returned
// teardown stops and deletes that cluster; call it after m.Run. Setup is for
// TestMain functions that compose several services; most packages use Main.
func Setup() (teardown func(), err error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.adminURL != "" {
		return nil, errors.New("pgtest.Setup called twice")
	}
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		state.adminURL = u
		return closeAdmin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := startCluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting throwaway Postgres cluster (or set %s): %w", EnvDatabaseURL, err)
	}
	state.cluster, state.adminURL = c, c.url
	return func() {
		closeAdmin()
		if err := c.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping cluster: %v\n", err)
		}
	}, nil
}

func closeAdmin() {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.admin != nil {
		state.admin.Close()
		state.admin = nil
	}
}

// AdminURL returns the superuser URL of the server the tests use. It fails the
// test when no server is configured (neither DZCONNECT_TEST_DATABASE_URL nor
// Main/Setup).
func AdminURL(t testing.TB) string {
	t.Helper()
	u, err := adminURL()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func adminURL() (string, error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.adminURL == "" {
		state.adminURL = os.Getenv(EnvDatabaseURL)
	}
	if state.adminURL == "" {
		return "", fmt.Errorf("pgtest: no Postgres server: set %s (make test does, via scripts/services.sh) "+
			"or call pgtest.Main(m) / pgtest.Setup() from TestMain", EnvDatabaseURL)
	}
	return state.adminURL, nil
}

// adminPool is a small shared pool on the server's maintenance database, used to
// create and drop databases.
func adminPool(ctx context.Context) (*pgxpool.Pool, error) {
	u, err := adminURL()
	if err != nil {
		return nil, err
	}
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.admin != nil {
		return state.admin, nil
	}
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("pgtest: parsing %s: %w", EnvDatabaseURL, err)
	}
	cfg.MaxConns = 8
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgtest: connecting to %s: %w", redact(u), err)
	}
	state.admin = p
	return p, nil
}

// withDatabase returns the server URL u with its database replaced by db.
func withDatabase(u, db string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") {
		return "", fmt.Errorf("pgtest: %s must be a postgres:// URL", EnvDatabaseURL)
	}
	parsed.Path = "/" + db
	parsed.RawPath = ""
	return parsed.String(), nil
}

// redact hides a password in u for error messages.
func redact(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "<unparsable URL>"
	}
	return parsed.Redacted()
}

// sanitize keeps [a-z0-9_] of s, lowercased, for use in database names.
func sanitize(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
