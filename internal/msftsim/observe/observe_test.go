package observe

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
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
