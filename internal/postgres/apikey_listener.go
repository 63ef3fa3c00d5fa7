package postgres

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/auth"
)

// apiKeysChannel is the channel the api_keys trigger notifies
// (migrations/00025_api_key_invalidation.sql; queries.ListenAPIKeys).
const apiKeysChannel = "dzconnect_api_keys"

// APIKeyListenerName is the application_name of the listener's
// connection (pg_stat_activity), so an operator (or a test) can find it.
const APIKeyListenerName = "dzconnect api-key listener"

// apiKeyHeartbeat is how long the listener waits for a notification
// before it pings its connection: a connection whose network died
// without a reset is noticed within apiKeyHeartbeat plus the statement
// timeout, and the cache is then flushed and bypassed.
const apiKeyHeartbeat = 10 * time.Second

// APIKeyListener keeps an auth.KeyCache true to Postgres: one dedicated
// connection per replica (not from the pool, so no statement timeout of
// the pool's applies to its long wait) LISTENs on dzconnect_api_keys and
// evicts each changed or deleted key. The cache is live only while the
// connection is: when it drops, the cache is flushed and bypassed (every
// call reads Postgres), and the listener reconnects with backoff; once
// LISTEN is established again, the cache is flushed once more and used.
type APIKeyListener struct {
	db    *DB
	cache *auth.KeyCache
	log   *slog.Logger

	mu         sync.Mutex
	listening  bool
	since      time.Time
	lastErr    string
	reconnects int
}

// NewAPIKeyListener returns a listener for cache; Run connects and listens.
func NewAPIKeyListener(db *DB, cache *auth.KeyCache, log *slog.Logger) *APIKeyListener {
	return &APIKeyListener{db: db, cache: cache, log: log, since: time.Now()}
}

// APIKeyListenerState is the listener's state in the internal /readyz.
type APIKeyListenerState struct {
	Listening bool      `json:"listening"`
	Since     time.Time `json:"since"`
	// LastError is why the connection last dropped or failed to connect.
	LastError  string `json:"last_error,omitempty"`
	Reconnects int    `json:"reconnects"`
}

// State returns the listener's state.
func (l *APIKeyListener) State() APIKeyListenerState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return APIKeyListenerState{Listening: l.listening, Since: l.since, LastError: l.lastErr, Reconnects: l.reconnects}
}

func (l *APIKeyListener) set(listening bool, err error) {
	l.mu.Lock()
	if l.listening != listening {
		l.since = time.Now()
	}
	l.listening = listening
	if err != nil {
		l.lastErr = err.Error()
	}
	if !listening {
		l.reconnects++
	}
	l.mu.Unlock()
	l.cache.SetLive(listening)
}

// Run listens until ctx ends.
func (l *APIKeyListener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		established, err := l.listen(ctx)
		if ctx.Err() != nil {
			l.cache.SetLive(false)
			return
		}
		// Notifications may have been lost: flush and bypass the cache
		// until LISTEN is established again.
		l.set(false, err)
		if established {
			backoff = 100 * time.Millisecond
		}
		l.log.WarnContext(ctx, "API-key listener disconnected; key cache bypassed until it reconnects", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// listen holds one dedicated connection in LISTEN; established reports
// whether LISTEN took effect before it ended.
func (l *APIKeyListener) listen(ctx context.Context) (established bool, err error) {
	cfg := l.db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = APIKeyListenerName
	d := l.db.statementTimeout()
	cctx, cancel := bound(ctx, d)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, stalled(cctx, d, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	lctx, cancel := bound(ctx, d)
	err = queries.ListenAPIKeys(lctx, conn)
	cancel()
	if err != nil {
		return false, stalled(lctx, d, err)
	}
	// From here every committed change is notified: flush what was cached
	// before (nothing, while bypassed) and serve from the cache.
	l.set(true, nil)
	l.log.InfoContext(ctx, "API-key listener established; key cache in use")
	for {
		wctx, cancel := context.WithTimeout(ctx, apiKeyHeartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && wctx.Err() != nil:
			// Quiet for a heartbeat: is the connection still there? A
			// timed-out wait leaves a pgx connection usable.
			pctx, cancel := bound(ctx, d)
			err = conn.Ping(pctx)
			err = stalled(pctx, d, err)
			cancel()
			if err != nil {
				return true, err
			}
		case err != nil:
			return true, err
		case n.Channel == apiKeysChannel:
			l.apply(n.Payload)
		}
	}
}

// apply evicts what a notification names: "<organization_id>/<id>", or
// "*" for every key.
func (l *APIKeyListener) apply(payload string) {
	orgS, idS, ok := strings.Cut(payload, "/")
	if !ok {
		l.cache.Flush() // "*", or anything unexpected: forget everything
		return
	}
	org, err1 := uuid.Parse(orgS)
	id, err2 := uuid.Parse(idS)
	if err1 != nil || err2 != nil {
		l.cache.Flush()
		return
	}
	l.cache.Evict(org, id)
}
