package jobs

import (
	"sync"
	"sync/atomic"
	"time"
)

// workers runs a replica's checks on goroutines it keeps between them,
// instead of a new goroutine per check. A check's goroutine grows its stack
// (Vault, the Microsoft session, the record: several copies from the
// runtime's starting size), and a new goroutine pays that again; a kept one
// has the stack from its last check. BenchmarkSweep (session 9): the
// growth of a new goroutine per check was about 0.05 ms of CPU per check,
// a twentieth of what dzconnect adds to the calls a check makes.
//
// Go never waits: a function goes to a goroutine idle in the cache, or to
// a new one, which joins the cache when the function returns. A goroutine
// idle for workerIdle ends, so the cache holds what the replica's recent
// concurrency needed, never more. Functions are never queued: whatever
// bounds the concurrency (the replica's and the tenant's check slots) is
// the caller's.
type workers struct {
	work     chan func() // unbuffered: a send succeeds only to an idle goroutine
	idle     time.Duration
	stop     chan struct{} // closed by close: idle goroutines end
	stopOnce sync.Once
	wg       sync.WaitGroup // every goroutine of the cache
	started  atomic.Int64   // goroutines started, ever
}

// workerIdle is how long a cached goroutine waits for another function.
const workerIdle = 30 * time.Second

func newWorkers(idle time.Duration) *workers {
	return &workers{work: make(chan func()), idle: idle, stop: make(chan struct{})}
}

// close ends the idle goroutines and waits for the busy ones to finish
// their function. Go still works afterwards, on a goroutine that ends with
// its function.
func (w *workers) close() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// Go runs f on an idle goroutine of the cache, or on a new one.
func (w *workers) Go(f func()) {
	select {
	case w.work <- f:
	default:
		w.wg.Add(1)
		w.started.Add(1)
		go w.run(f)
	}
}

func (w *workers) run(f func()) {
	defer w.wg.Done()
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		f()
		f = nil         // nothing of the last function stays reachable while idle
		t.Reset(w.idle) // Go 1.23 timers: no stale tick survives a Reset
		select {
		case f = <-w.work:
		case <-t.C:
			return
		case <-w.stop:
			return
		}
	}
}
