package verify

import (
	"context"
	"slices"
	"sync"
	"time"
)

// groupMax is the most checks one group writes.
const groupMax = 256

// groupLinger is how long a group's writer waits for more records before
// writing (less when groupMax are waiting). A sweep's records are written
// while its next checks run, so the wait costs no check a Microsoft slot;
// it makes groups larger and statements fewer. A statement costs Postgres
// about ten rows' worth beyond its rows (planning, the arrays, the commit):
// at 10 ms a sweep of 2,000 at ~500 checks/s wrote groups of about 9, at
// 40 ms about 28, and Postgres's CPU per check fell by 0.04-0.09 ms
// (BenchmarkSweep, session 9). A check's record waits up to that much
// longer, while the tenant's next checks run (openPerSlot).
const groupLinger = 40 * time.Millisecond

// groupTimeout bounds the writing of one group. It does not come from a
// caller's context: a group carries other checks' records.
const groupTimeout = 10 * time.Second

// groupWriter writes scheduled checks' records in groups (recordGroup): a
// commit that finds no write in flight writes every one that waits; those
// that arrive meanwhile wait, and the first of them writes the next group.
// A lone check pays what it paid alone (one statement on the fast path,
// one transaction otherwise); a sweep committing many checks at once pays
// a few statements per group instead of a few per check.
type groupWriter struct {
	mu      sync.Mutex
	busy    bool // a writer is writing
	waiting []*groupReq
	full    chan struct{} // signalled (without blocking) when groupMax are waiting, or a Last record
}

type groupReq struct {
	p    Pending
	wake chan struct{} // closed when done, or when this request is to write the next group
	lead bool          // set before wake is closed: write the next group
	r    Result
	err  error
}

// signal ends the linger of the group being collected (or of the next
// one, when none is); g.mu is held.
func (g *groupWriter) signal() {
	select {
	case g.full <- struct{}{}:
	default:
	}
}

// commit records p with the group it joins and returns its own result.
func (g *groupWriter) commit(s *Service, p Pending) (Result, error) {
	r := &groupReq{p: p, wake: make(chan struct{})}
	g.mu.Lock()
	if g.full == nil {
		g.full = make(chan struct{}, 1)
	}
	g.waiting = append(g.waiting, r)
	if len(g.waiting) >= groupMax || p.last {
		g.signal()
	}
	lead := !g.busy
	g.busy = true
	full := g.full
	g.mu.Unlock()
	if !lead {
		<-r.wake
		if !r.lead {
			return r.r, r.err
		}
	}
	// Collect the group: until groupLinger has passed or groupMax wait.
	t := time.NewTimer(groupLinger)
	select {
	case <-t.C:
	case <-full:
	}
	t.Stop()
	g.mu.Lock()
	n := min(len(g.waiting), groupMax)
	group := g.waiting[:n:n]
	g.waiting = append([]*groupReq(nil), g.waiting[n:]...)
	// The signal was for this group; the next one's writer lingers unless
	// what is left calls for it again.
	select {
	case <-full:
	default:
	}
	if len(g.waiting) >= groupMax || slices.ContainsFunc(g.waiting, func(q *groupReq) bool { return q.p.last }) {
		g.signal()
	}
	g.mu.Unlock()

	ps := make([]Pending, len(group))
	for i, q := range group {
		ps[i] = q.p
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	rs, errs := s.recordGroup(ctx, ps)
	cancel()
	for i, q := range group {
		q.r, q.err = rs[i], errs[i]
		if q != r {
			close(q.wake)
		}
	}
	g.mu.Lock()
	if len(g.waiting) > 0 {
		next := g.waiting[0]
		next.lead = true
		close(next.wake)
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return r.r, r.err
}
