package verify

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// ReasonChecksBusy is the google.rpc.ErrorInfo reason of an on-demand
// check refused because too many run at once.
const ReasonChecksBusy = "CHECKS_BUSY"

// OnDemandLimits bound the checks callers run synchronously and wait for
// (issue 11 item 12e): CheckIntegration (Run with TriggerAPI; dzctl
// check, with or without --wait) and UpdateIntegration trying a new client
// secret (TryCredential). Scheduled, settle and provisioning checks run on
// the job queue, bounded by its own workers, and are not counted.
type OnDemandLimits struct {
	// Total: at most this many at once on this replica (0: no bound).
	Total int
	// PerOrg: at most this many of one organization at once on this
	// replica, so that one organization cannot take every slot (0: only
	// Total bounds it).
	PerOrg int
}

// OnDemandStats are the on-demand checks' counters.
type OnDemandStats struct {
	InFlight int
	// Refused over Total (the replica's bound) and over PerOrg.
	RefusedReplica, RefusedOrganization int64
}

// onDemand hands out the slots. Over a bound a check is refused at once,
// before anything is read or recorded: ResourceExhausted (CHECKS_BUSY)
// with a retry delay of the recent on-demand checks' average duration
// (when a slot is likely to be free), between 1 and 30 seconds.
type onDemand struct {
	mu      sync.Mutex
	lim     OnDemandLimits
	total   int
	byOrg   map[uuid.UUID]int
	avg     time.Duration // moving average of an on-demand check's duration
	refused [2]int64      // replica, organization
}

// LimitOnDemand bounds on-demand checks (OnDemandLimits).
func (s *Service) LimitOnDemand(l OnDemandLimits) {
	s.onDemand = &onDemand{lim: l, byOrg: map[uuid.UUID]int{}, avg: 2 * time.Second}
}

// OnDemandStats returns the on-demand checks' counters (zero without
// LimitOnDemand).
func (s *Service) OnDemandStats() OnDemandStats {
	g := s.onDemand
	if g == nil {
		return OnDemandStats{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return OnDemandStats{InFlight: g.total, RefusedReplica: g.refused[0], RefusedOrganization: g.refused[1]}
}

// heldSlot marks a context whose caller holds an on-demand slot
// (ReserveOnDemand): the checks it runs take no other.
type heldSlot struct{}

// ReserveOnDemand takes an on-demand slot for a use case that runs
// checks on org's behalf before it writes anything (UpdateIntegration
// with a new client secret: refused before its credential is made), and
// returns a context whose TryCredential and Run calls use that slot;
// release gives it back.
func (s *Service) ReserveOnDemand(ctx context.Context, org uuid.UUID) (context.Context, func(), error) {
	release, err := s.enterOnDemand(ctx, org)
	if err != nil {
		return ctx, nil, err
	}
	return context.WithValue(ctx, heldSlot{}, true), release, nil
}

// enterOnDemand takes a slot for one of org's on-demand checks; release
// gives it back. Without LimitOnDemand, or when ctx holds one already
// (ReserveOnDemand), it takes none.
func (s *Service) enterOnDemand(ctx context.Context, org uuid.UUID) (release func(), err error) {
	g := s.onDemand
	if held, _ := ctx.Value(heldSlot{}).(bool); g == nil || held {
		return func() {}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	wait := min(max(g.avg, time.Second), 30*time.Second).Round(time.Second)
	switch {
	case g.lim.PerOrg > 0 && g.byOrg[org] >= g.lim.PerOrg:
		g.refused[1]++
		return nil, busy("the organization", "organization", g.lim.PerOrg, wait)
	case g.lim.Total > 0 && g.total >= g.lim.Total:
		g.refused[0]++
		return nil, busy("this server", "replica", g.lim.Total, wait)
	}
	g.total++
	g.byOrg[org]++
	start := s.now()
	var once sync.Once
	return func() {
		once.Do(func() {
			d := s.now().Sub(start)
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.byOrg[org]--; g.byOrg[org] <= 0 {
				delete(g.byOrg, org)
			}
			if d > 0 {
				g.avg += (d - g.avg) / 8
			}
		})
	}, nil
}

func busy(who, scope string, limit int, wait time.Duration) error {
	return apperr.New(apperr.ResourceExhausted, "too many on-demand checks running: %s runs at most %d at once; nothing was checked or recorded, retry after %s",
		who, limit, wait).WithReason(ReasonChecksBusy).
		WithMetadata("scope", scope).WithMetadata("limit", strconv.Itoa(limit)).
		WithRetryDelay(wait)
}
