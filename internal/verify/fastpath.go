package verify

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// fastPathMax is the most checks one fast-path statement writes.
const fastPathMax = 256

// fastPath writes the fast-path records (Unchanged) of concurrent checks
// together: a check that finds no write in flight writes every one that
// waits, in one statement (Store.RecordUnchangedMany); those that arrive
// meanwhile wait, and the first of them writes the next group. A lone
// check pays one statement, as before; a sweep running many checks at once
// pays one statement per group instead of one per check.
type fastPath struct {
	mu      sync.Mutex
	busy    bool // a writer is writing
	waiting []*fastReq
}

type fastReq struct {
	u    Unchanged
	wake chan struct{} // closed when done, or when this request is to write the next group
	lead bool          // set before wake is closed: write the next group
	ok   bool          // written
	err  error
}

// record applies u's expectations and writes it if they hold (ok). The
// write is bounded by its own timeout, not by ctx: a group carries other
// checks' records.
func (f *fastPath) record(s *Service, u Unchanged) (ok bool, err error) {
	r := &fastReq{u: u, wake: make(chan struct{})}
	f.mu.Lock()
	f.waiting = append(f.waiting, r)
	lead := !f.busy
	f.busy = true
	f.mu.Unlock()
	if !lead {
		<-r.wake
		if !r.lead {
			return r.ok, r.err
		}
	}
	f.mu.Lock()
	n := min(len(f.waiting), fastPathMax)
	group := f.waiting[:n:n]
	f.waiting = append([]*fastReq(nil), f.waiting[n:]...)
	f.mu.Unlock()

	us := make([]Unchanged, len(group))
	for i, g := range group {
		us[i] = g.u
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	written, werr := s.store.RecordUnchangedMany(ctx, s.tx.Conn(), us)
	cancel()
	done := make(map[uuid.UUID]bool, len(written))
	for _, id := range written {
		done[id] = true
	}
	for _, g := range group {
		g.ok, g.err = done[g.u.Check.ID], werr
		if g != r {
			close(g.wake)
		}
	}
	f.mu.Lock()
	if len(f.waiting) > 0 {
		next := f.waiting[0]
		next.lead = true
		close(next.wake)
	} else {
		f.busy = false
	}
	f.mu.Unlock()
	return r.ok, r.err
}
