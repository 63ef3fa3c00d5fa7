package jobs

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestWorkersReuseIdleGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorkers(time.Minute)
		var ran atomic.Int64
		f := func() { ran.Add(1) }
		// One after the other: every function after the first finds the
		// goroutine idle.
		for range 10 {
			w.Go(f)
			synctest.Wait()
		}
		if got := w.started.Load(); got != 1 {
			t.Fatalf("10 functions one after the other started %d goroutines, want 1", got)
		}
		// Several at once: a goroutine each, kept afterwards.
		release := make(chan struct{})
		block := func() { <-release; ran.Add(1) }
		for range 3 {
			w.Go(block)
		}
		synctest.Wait()
		if got := w.started.Load(); got != 3 {
			t.Fatalf("3 functions at once (one goroutine idle before) started %d goroutines in all, want 3", got)
		}
		close(release)
		synctest.Wait()
		for range 3 {
			w.Go(block)
		}
		synctest.Wait()
		if got := w.started.Load(); got != 3 {
			t.Fatalf("3 more at once on 3 idle goroutines started %d in all, want 3", got)
		}
		// Idle longer than the limit: the goroutines end, and the next
		// function gets a new one.
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		w.Go(f)
		synctest.Wait()
		if got := w.started.Load(); got != 4 {
			t.Fatalf("after the idle limit: %d goroutines started in all, want 4", got)
		}
		w.close()
		if got := ran.Load(); got != 17 {
			t.Fatalf("%d functions ran, want 17", got)
		}
		// After close, Go still runs the function (on a goroutine that
		// then ends).
		w.Go(f)
		synctest.Wait()
		w.close()
		if got := ran.Load(); got != 18 {
			t.Fatalf("after close: %d functions ran, want 18", got)
		}
	})
}
