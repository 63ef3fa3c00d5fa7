package integration

import (
	"context"
	"time"
)

// JanitorResult counts one janitor pass.
type JanitorResult struct {
	Reaped    int // stale pending credentials (and their pending integrations) removed
	Destroyed int // secrets destroyed from the outbox
}

// Janitor finishes what crashes and outages left: ReapPending with
// pendingTTL, then the queued secret destructions are retried. Several
// replicas may run it at once: outbox rows are claimed with SKIP LOCKED.
func (s *Service) Janitor(ctx context.Context, pendingTTL time.Duration) (JanitorResult, error) {
	var r JanitorResult
	n, err := s.ReapPending(ctx, pendingTTL)
	if err != nil {
		return r, err
	}
	r.Reaped = n
	for {
		claimed, done, err := s.store.ClaimSecretDestructions(ctx, 100, func(d SecretDestruction) error {
			return s.secrets.Destroy(ctx, d.Path)
		})
		r.Destroyed += done
		if err != nil || claimed == 0 {
			return r, err
		}
	}
}

// RunJanitor runs Janitor every interval until ctx ends.
func (s *Service) RunJanitor(ctx context.Context, interval, pendingTTL time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := s.Janitor(ctx, pendingTTL)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "janitor pass failed", "error", err)
		} else if r.Reaped+r.Destroyed > 0 {
			s.log.InfoContext(ctx, "janitor pass", "reaped_pending", r.Reaped, "secrets_destroyed", r.Destroyed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
