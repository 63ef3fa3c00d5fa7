// Package vault is the secret-store adapter: client secrets live in a Vault
// KV v2 mount under a configurable prefix, written with check-and-set so
// concurrent writers cannot overwrite each other, with versions kept.
// Authentication is a token or AppRole (re-login on expiry). Errors never
// carry a secret value: Vault's errors name the path, never the payload.
package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
)

// Config selects the Vault server, credentials and location of secrets.
type Config struct {
	Addr            string
	CACert          string // optional PEM file
	Token           string // token auth, or
	AppRoleID       string // AppRole auth (role_id + secret_id)
	AppRoleSecretID string
	AppRoleMount    string // default "approle"
	Mount           string // KV v2 mount, default "secret"
	Prefix          string // path prefix inside the mount, default "dzconnect"
	Log             *slog.Logger
	// Timeout bounds each operation (with its retries and a re-login):
	// a stalled Vault answers Unavailable naming Vault after this, not
	// at the caller's deadline. Default 10s.
	Timeout time.Duration
}

// Store implements integration.SecretStore.
type Store struct {
	client *api.Client
	kv     *api.KVv2
	hc     *http.Client // the client's, for the plain KV reads (read.go)
	cfg    Config
	log    *slog.Logger

	mu     sync.Mutex // serializes logins; guards gen, stop
	gen    uint64     // login generation: bumped by every AppRole login
	logins int        // AppRole logins made (tests)
	stop   chan struct{}
	closed bool
}

var _ integration.SecretStore = (*Store)(nil)

const secretField = "client_secret"

// maxIdleConnsPerHost is how many idle connections to Vault are kept: a
// replica's check slots read secrets concurrently (--check-concurrency ×
// --check-per-tenant, 50 by default).
const maxIdleConnsPerHost = 64

// New connects and authenticates, and keeps the token alive: a renewable
// token (an AppRole login's, or a renewable static token) is renewed in
// the background before it expires; when it can be renewed no further
// (its max TTL), an AppRole logs in again ahead of expiry. Close stops
// that.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "dzconnect"
	}
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = "approle"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	vc := api.DefaultConfig()
	vc.Address = cfg.Addr
	vc.MaxRetries = 2
	if t, ok := vc.HttpClient.Transport.(*http.Transport); ok {
		// Keep the connections a sweep's concurrent reads use (the
		// client's default keeps GOMAXPROCS+1 idle per host: with 50
		// checks at once most reads opened a new connection, and over
		// TLS a new handshake).
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	}
	if cfg.CACert != "" {
		if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("vault TLS: %w", err)
		}
	}
	// Spans for the requests of traced calls (tracing.go); after
	// ConfigureTLS, which needs the bare *http.Transport.
	vc.HttpClient.Transport = tracingTransport(vc.HttpClient.Transport, cfg.Mount)
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	client.ClearToken()
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{client: client, kv: client.KVv2(cfg.Mount), hc: vc.HttpClient, cfg: cfg, log: log, stop: make(chan struct{})}
	switch {
	case cfg.AppRoleID != "":
		lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := s.login(lctx, 0)
		cancel()
		if err != nil {
			return nil, err
		}
	case cfg.Token != "":
		client.SetToken(cfg.Token)
		// A renewable static token is kept alive too; a root or
		// non-renewable token is used as it is.
		lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		sec, err := client.Auth().Token().LookupSelfWithContext(lctx)
		cancel()
		if err == nil {
			if renewable, _ := sec.TokenIsRenewable(); renewable {
				if ttl, _ := sec.TokenTTL(); ttl > 0 {
					s.watch(&api.Secret{Auth: &api.SecretAuth{ClientToken: cfg.Token, Renewable: true, LeaseDuration: int(ttl.Seconds())}})
				}
			}
		}
	default:
		return nil, errors.New("vault: configure a token or an AppRole")
	}
	return s, nil
}

// Close stops renewing the token.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
}

// generation is the current login generation.
func (s *Store) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// login logs in with the AppRole unless another login happened since seen
// (the generation the caller's refused request ran under): a burst of
// requests refused with one expired token costs one login, not one each.
func (s *Store) login(ctx context.Context, seen uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != seen {
		return nil // someone else logged in meanwhile: retry with that token
	}
	ar, err := approle.NewAppRoleAuth(s.cfg.AppRoleID, &approle.SecretID{FromString: s.cfg.AppRoleSecretID},
		approle.WithMountPath(s.cfg.AppRoleMount))
	if err != nil {
		return fmt.Errorf("vault approle: %w", err)
	}
	secret, err := s.client.Auth().Login(ctx, ar)
	if err != nil {
		return fmt.Errorf("vault approle login: %w", err)
	}
	if secret == nil || secret.Auth == nil {
		return errors.New("vault approle login returned no token")
	}
	s.gen++
	s.logins++
	if secret.Auth.Renewable && !s.closed {
		s.watchLocked(secret)
	}
	return nil
}

func (s *Store) watch(secret *api.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchLocked(secret)
}

// watchLocked renews secret's token until it can be renewed no further,
// then (AppRole) logs in again; a newer login ends it. s.mu is held.
func (s *Store) watchLocked(secret *api.Secret) {
	w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		s.log.Warn("vault token renewal not started", "error", err)
		return
	}
	gen := s.gen
	go w.Start()
	go func() {
		defer w.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-w.RenewCh():
			case err := <-w.DoneCh():
				if s.cfg.AppRoleID == "" {
					if err != nil {
						s.log.Warn("vault token renewal failed; the token will expire", "error", err)
					}
					return
				}
				// Max TTL reached (or renewal refused): log in again before
				// requests start failing; a login since (gen moved) wins.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if lerr := s.login(ctx, gen); lerr != nil {
					s.log.Warn("vault re-login ahead of token expiry failed; requests will log in when refused", "error", lerr)
				}
				cancel()
				return
			}
		}
	}()
}

// do runs op within the operation timeout, logging in again once if an
// AppRole token was refused. A timeout of its own (not the caller's
// deadline) is Unavailable: Vault stalled.
func (s *Store) do(ctx context.Context, op func(ctx context.Context) error) error {
	octx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	gen := s.generation()
	err := op(octx)
	if s.cfg.AppRoleID != "" && status(err) == http.StatusForbidden {
		if lerr := s.login(octx, gen); lerr != nil {
			err = lerr
		} else {
			err = op(octx)
		}
	}
	if err != nil && octx.Err() != nil && ctx.Err() == nil {
		return apperr.Wrap(err, apperr.Unavailable, "Vault did not answer within %s", s.cfg.Timeout).WithReason("VAULT_TIMEOUT")
	}
	return classify(err)
}

func (s *Store) full(p string) string { return path.Join(s.cfg.Prefix, p) }

// MaxVersions is how many versions Vault keeps per secret path. Versions
// written by attempts that failed before their Postgres row was updated
// are never referenced; keeping many means such orphans cannot push out
// the version Postgres points at (Vault's default keeps 10).
const MaxVersions = 100

// PutClientSecret implements integration.SecretStore. The first write to
// a path (cas 0) also sets its MaxVersions (and requires check-and-set),
// with a metadata write made beside the data write: KV v2 serializes the
// two per path, and either order ends with the version and the metadata
// (metadata first leaves the path at version 0, which a cas-0 write
// expects). A data write that fails after its metadata landed leaves
// metadata without a secret on the path, which the next write to it
// uses.
func (s *Store) PutClientSecret(ctx context.Context, p, secret string, cas int64) (int64, error) {
	var version int64
	err := s.do(ctx, func(ctx context.Context) error {
		meta := make(chan error, 1)
		if cas == 0 {
			go func() {
				meta <- s.kv.PutMetadata(ctx, s.full(p), api.KVMetadataPutInput{MaxVersions: MaxVersions, CASRequired: true})
			}()
		} else {
			meta <- nil
		}
		out, err := s.kv.Put(ctx, s.full(p), map[string]any{secretField: secret}, api.WithCheckAndSet(int(cas)))
		merr := <-meta
		if err != nil {
			return err
		}
		version = int64(out.VersionMetadata.Version)
		return merr
	})
	return version, err
}

// CurrentVersion implements integration.SecretStore.
func (s *Store) CurrentVersion(ctx context.Context, p string) (int64, error) {
	var v int64
	err := s.do(ctx, func(ctx context.Context) error {
		m, err := s.kv.GetMetadata(ctx, s.full(p))
		if err != nil {
			return err
		}
		v = int64(m.CurrentVersion)
		return nil
	})
	if apperr.Is(err, apperr.NotFound) {
		return 0, nil
	}
	return v, err
}

// Destroy implements integration.SecretStore: a soft delete of the latest
// version, then the metadata delete that destroys every version.
func (s *Store) Destroy(ctx context.Context, p string) error {
	err := s.do(ctx, func(ctx context.Context) error {
		if err := s.kv.Delete(ctx, s.full(p)); err != nil && status(err) != http.StatusNotFound {
			return err
		}
		return s.kv.DeleteMetadata(ctx, s.full(p))
	})
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	return err
}

// Ping checks that Vault is reachable, unsealed and the token valid.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
}

func status(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// classify maps Vault errors to apperr kinds.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.From(err); ok {
		return err
	}
	if errors.Is(err, api.ErrSecretNotFound) {
		return apperr.Wrap(err, apperr.NotFound, "secret not found in Vault")
	}
	switch code := status(err); {
	case code == http.StatusNotFound:
		return apperr.Wrap(err, apperr.NotFound, "secret not found in Vault")
	case code == http.StatusBadRequest && strings.Contains(err.Error(), "check-and-set"):
		return apperr.Wrap(err, apperr.Aborted, "secret changed concurrently in Vault").WithReason("VAULT_CAS_MISMATCH")
	case code == http.StatusForbidden:
		return apperr.Wrap(err, apperr.Internal, "Vault refused dzconnect's credentials")
	case errors.Is(err, context.Canceled):
		return apperr.Wrap(err, apperr.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return apperr.Wrap(err, apperr.DeadlineExceeded, "deadline exceeded while talking to Vault")
	}
	return apperr.Wrap(err, apperr.Unavailable, "Vault unavailable")
}
