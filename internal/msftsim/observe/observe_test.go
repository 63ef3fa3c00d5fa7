package observe

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestRecorderCountsAndWraps(t *testing.T) {
	rec := NewRecorder(3)
	h := rec.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := Annotate(r, r.URL.Query().Get("route"), "t1")
		if r.URL.Query().Get("fault") != "" {
			i.Fault = "throttle"
			w.WriteHeader(429)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	for _, q := range []string{"route=a", "route=a&fault=1", "route=b", "route=a", "route=admin.x"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?"+q, nil))
	}
	a := rec.Count("a")
	if a.Requests != 3 || a.Statuses[200] != 2 || a.Statuses[429] != 1 || a.Faulted["throttle"] != 1 {
		t.Fatalf("a: %+v", a)
	}
	if rec.Count("admin.x").Requests != 0 {
		t.Fatal("admin requests counted")
	}
	log := rec.Log(0)
	if len(log) != 3 || log[0].Route != "a" || log[1].Route != "b" || log[2].Route != "a" || log[0].Fault != "throttle" {
		t.Fatalf("log %+v", log)
	}
	if l := rec.Log(1); len(l) != 1 || l[0].Route != "a" {
		t.Fatalf("last %+v", l)
	}
	rec.Reset()
	if len(rec.Counts()) != 0 || len(rec.Log(0)) != 0 {
		t.Fatal("reset kept data")
	}
}

func TestPeakInFlight(t *testing.T) {
	rec := NewRecorder(10)
	release := make(chan struct{})
	entered := make(chan struct{}, 3)
	h := rec.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Annotate(r, "graph.test", r.URL.Query().Get("tenant"))
		entered <- struct{}{}
		<-release
	}))
	var wg sync.WaitGroup
	for _, tenant := range []string{"a", "a", "b"} {
		wg.Go(func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/?tenant="+tenant, nil))
		})
	}
	for range 3 {
		<-entered
	}
	if got := rec.InFlight(); got["a"] != 2 || got["b"] != 1 {
		t.Fatalf("in flight %v", got)
	}
	close(release)
	wg.Wait()
	if got := rec.PeakInFlight(); got["a"] != 2 || got["b"] != 1 {
		t.Fatalf("peak %v", got)
	}
	if got := rec.InFlight(); len(got) != 0 {
		t.Fatalf("in flight after %v", got)
	}
}

// TestAnswerAfter: a fixed latency counts from the request's arrival, and
// the handler's own work runs inside it instead of adding to it. The
// answer never leaves before the latency (whichever way the handler
// answers: a body, a status alone, nothing), and a handler whose work
// takes most of the latency is answered at about the latency, not at the
// sum of both (the bound leaves a margin of 350 ms for a loaded machine).
func TestAnswerAfter(t *testing.T) {
	const latency = 500 * time.Millisecond
	const work = 400 * time.Millisecond
	if (&Info{}).AnswerAfter(latency) {
		t.Fatal("AnswerAfter outside the middleware must report false (the caller sleeps)")
	}
	rec := NewRecorder(10)
	h := rec.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := Annotate(r, "a", "t1")
		if !i.AnswerAfter(latency) {
			t.Error("AnswerAfter inside the middleware reported false")
		}
		switch r.URL.Query().Get("answer") {
		case "body":
			_, _ = w.Write([]byte("ok"))
		case "status":
			w.WriteHeader(http.StatusNoContent)
		case "work":
			time.Sleep(work) // the simulator's own work, not synchronization
			_, _ = w.Write([]byte("ok"))
		}
	}))
	for _, answer := range []string{"body", "status", "nothing", "work"} {
		start := time.Now()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?answer="+answer, nil))
		took := time.Since(start)
		if took < latency {
			t.Errorf("%s: answered after %v, before the latency %v", answer, took, latency)
		}
		if answer == "work" && took >= latency+work-150*time.Millisecond {
			t.Errorf("work: answered after %v: the handler's %v were added to the latency %v instead of running inside it", took, work, latency)
		}
	}
}
