package provision

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/operation"
)

// sessionIdle is how long an operation's provisioner session is kept
// unused (an operation waiting longer, for a retry's backoff, opens a new
// one).
const sessionIdle = 2 * time.Minute

// sessions keeps one provisioner Directory per running operation, so that
// its steps share the provisioner's tokens and credentials instead of
// reading the credentials (Postgres, Vault) and fetching new tokens at
// every step (BenchmarkProvision). The provisioner's own permissions do
// not change during a provisioning: what changes are the integration's
// grants, and the integration's tokens are the verify step's own (a new
// session per check). A retried step attempt (Attempt > 1) reads the
// credentials again and opens a new session that replaces the operation's,
// so a refusal is always tried again with fresh tokens (the Azure RBAC
// recheck depends on that) and with the current consent and secret (a
// revoked consent or a rotated secret shows as a failed call first, then
// the retry sees it). The Sentinel step's looks in its RBAC window (polls,
// not attempts) open a new session each too.
type sessions struct {
	mu sync.Mutex
	m  map[uuid.UUID]*cachedSession
}

type cachedSession struct {
	dir         Directory
	provisioner string // its client ID
	used        time.Time
}

// reuse returns the operation's session for a first attempt.
func (s *Service) reuse(sc operation.StepContext) (Directory, string, bool) {
	c := &s.sessions
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if now.Sub(e.used) > sessionIdle {
			delete(c.m, id)
		}
	}
	e, ok := c.m[sc.Operation]
	if !ok || sc.Attempt > 1 || sc.Polls > 0 && sc.Step == StepSentinelRole {
		return nil, "", false
	}
	e.used = now
	return e.dir, e.provisioner, true
}

// directory opens a new session with creds and makes it the operation's.
func (s *Service) directory(sc operation.StepContext, creds consent.Credentials) (Directory, error) {
	dir, err := s.d.Open(creds)
	if err != nil {
		return nil, err
	}
	c := &s.sessions
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uuid.UUID]*cachedSession{}
	}
	c.m[sc.Operation] = &cachedSession{dir: dir, provisioner: creds.ClientID, used: time.Now()}
	return dir, nil
}

// forget drops the operation's session (it has ended).
func (s *Service) forget(op uuid.UUID) {
	s.sessions.mu.Lock()
	delete(s.sessions.m, op)
	s.sessions.mu.Unlock()
}
