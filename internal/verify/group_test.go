package verify

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// groupStore records the groups written by the sweep's fast path (one
// statement per group); every other Store method is unused here.
type groupStore struct {
	Store
	gate   chan struct{} // when set, a statement waits for a value
	mu     sync.Mutex
	groups []int
}

func (g *groupStore) RecordExpectedMany(_ context.Context, _ uow.Tx, es []Expected) ([]uuid.UUID, error) {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups = append(g.groups, len(es))
	ids := make([]uuid.UUID, len(es))
	for i, e := range es {
		ids[i] = e.Check.ID
	}
	return ids, nil
}

type conn struct{}

func (conn) Transactional() bool { return false }

type runner struct{}

func (runner) InTx(ctx context.Context, fn func(context.Context, uow.Tx) error) error {
	return fn(ctx, conn{})
}
func (runner) Conn() uow.Tx { return conn{} }

// unchanged is a scheduled check whose outcome is the state read: the
// fast path's one statement, no event.
func unchanged() Pending {
	in := integration.Integration{ID: uuid.New(), State: integration.StateHealthy, Version: 1}
	return Pending{Check: Check{Org: uuid.New(), Integration: in.ID, ID: uuid.New(), Trigger: TriggerSchedule,
		Outcome: integration.StateHealthy, IntegrationVersion: 1}, loaded: in}
}

// TestGroupLast: a group's writer waits up to groupLinger for more records,
// unless a record marked Last (a batch's last check) joins it: then the
// group is written at once, with what waits, and the next group lingers
// again.
func TestGroupLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &groupStore{}
		s := NewService(Config{}, Deps{Tx: runner{}, Store: store})
		commit := func(p Pending, wg *sync.WaitGroup) {
			wg.Go(func() {
				if _, err := s.Commit(context.Background(), p); err != nil {
					t.Error(err)
				}
			})
		}
		start := time.Now()
		var wg sync.WaitGroup
		commit(unchanged(), &wg)
		synctest.Wait() // the first lingers, alone
		commit(unchanged().Last(), &wg)
		wg.Wait()
		if d := time.Since(start); d != 0 {
			t.Fatalf("a group with a Last record was written after %v, want at once", d)
		}
		if len(store.groups) != 1 || store.groups[0] != 2 {
			t.Fatalf("groups written %v, want one of 2", store.groups)
		}

		// Without a Last record, the group waits out its linger.
		start = time.Now()
		commit(unchanged(), &wg)
		synctest.Wait()
		commit(unchanged(), &wg)
		wg.Wait()
		if d := time.Since(start); d != groupLinger {
			t.Fatalf("a group without a Last record was written after %v, want %v", d, groupLinger)
		}
		if len(store.groups) != 2 || store.groups[1] != 2 {
			t.Fatalf("groups written %v, want a second of 2", store.groups)
		}

		// A Last record that joins while another group is being written
		// ends the next group's linger, not a later one's.
		store.gate = make(chan struct{})
		commit(unchanged().Last(), &wg)
		synctest.Wait() // written at once: waiting in its statement
		commit(unchanged(), &wg)
		commit(unchanged().Last(), &wg)
		synctest.Wait()
		start = time.Now()
		store.gate <- struct{}{} // the first group's statement
		store.gate <- struct{}{} // the next one's, at once
		store.gate = nil
		wg.Wait()
		if d := time.Since(start); d != 0 {
			t.Fatalf("the group after a Last record waited %v, want none", d)
		}
		start = time.Now()
		commit(unchanged(), &wg)
		wg.Wait()
		if d := time.Since(start); d != groupLinger {
			t.Fatalf("a later group waited %v, want its linger %v (the Last signal was for the group before)", d, groupLinger)
		}
		if want := []int{2, 2, 1, 2, 1}; !slices.Equal(store.groups, want) {
			t.Fatalf("groups written %v, want %v", store.groups, want)
		}
	})
}
