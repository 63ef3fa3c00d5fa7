// Package observe records what the simulator served: per-route counters and
// a bounded request log, read by tests through the admin API.
package observe

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Info is filled in by the handler that serves a request: which simulated
// route it was, for which tenant and client, and which fault (if any) was
// injected.
type Info struct {
	Route  string
	Tenant string
	Client string
	Fault  string

	rec      *Recorder // counts the request in flight for its tenant
	inFlight string    // the tenant it is counted for

	// start is when the middleware received the request; answerAt, when
	// set, is the earliest time its answer may leave (AnswerAfter).
	start    time.Time
	answerAt time.Time
}

// AnswerAfter makes the request's answer leave no earlier than d after the
// request arrived: a fixed latency that the simulator's own work (the
// handler, its JSON, a token's signature) runs inside of, as a remote
// service's does, instead of adding to it. It reports false outside the
// middleware (no arrival time); the caller then sleeps d itself.
func (i *Info) AnswerAfter(d time.Duration) bool {
	if i.start.IsZero() {
		return false
	}
	if at := i.start.Add(d); at.After(i.answerAt) {
		i.answerAt = at
	}
	return true
}

type ctxKey struct{}

// InfoFrom returns the request's Info; never nil inside the middleware.
func InfoFrom(ctx context.Context) *Info {
	if i, ok := ctx.Value(ctxKey{}).(*Info); ok {
		return i
	}
	return &Info{}
}

// Annotate names the route and tenant of the request being served.
func Annotate(r *http.Request, route, tenant string) *Info {
	i := InfoFrom(r.Context())
	i.Route = route
	if tenant != "" {
		i.Tenant = tenant
		if i.rec != nil && i.inFlight == "" {
			i.inFlight = tenant
			i.rec.enter(tenant)
		}
	}
	return i
}

// Entry is one served request.
type Entry struct {
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Route      string    `json:"route"`
	Tenant     string    `json:"tenant,omitempty"`
	Client     string    `json:"client,omitempty"`
	Status     int       `json:"status"`
	Fault      string    `json:"fault,omitempty"`
	DurationMS float64   `json:"durationMs"`
	// RequestID is the ID the simulator answered with (Graph request-id,
	// ARM x-ms-request-id); ClientRequestID is the caller's client-request-id.
	RequestID       string `json:"requestId,omitempty"`
	ClientRequestID string `json:"clientRequestId,omitempty"`
}

// RouteCount aggregates one route.
type RouteCount struct {
	Route    string         `json:"route"`
	Requests int64          `json:"requests"`
	Faults   int64          `json:"faults"`
	Statuses map[int]int64  `json:"statuses"`
	Faulted  map[string]int `json:"faulted,omitempty"`
}

// Recorder keeps counters and the last Capacity requests.
type Recorder struct {
	// OnEntry, when set before serving starts, sees every recorded request.
	OnEntry func(Entry)

	mu       sync.Mutex
	inFlight map[string]int // requests being served per tenant
	peak     map[string]int // highest inFlight per tenant since the last reset
	counts   map[string]*RouteCount
	tenants  map[string]*TenantCount // by lower-case tenant
	log      []Entry
	next     int
	full     bool
	capacity int
}

// NewRecorder keeps up to capacity log entries (default 10000).
func NewRecorder(capacity int) *Recorder {
	if capacity <= 0 {
		capacity = 10000
	}
	return &Recorder{counts: map[string]*RouteCount{}, tenants: map[string]*TenantCount{}, log: make([]Entry, capacity), capacity: capacity,
		inFlight: map[string]int{}, peak: map[string]int{}}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	info   *Info
	ctx    context.Context
}

// hold waits, before the answer's first byte, until the time the request
// may be answered (Info.AnswerAfter), or until the caller gives up.
func (w *statusWriter) hold() {
	d := time.Until(w.info.answerAt)
	if w.info.answerAt.IsZero() || d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ctx.Done():
	case <-t.C:
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.hold()
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.hold()
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Middleware records every request that passes through next.
func (rec *Recorder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &Info{rec: rec, start: start}
		sw := &statusWriter{ResponseWriter: w, info: info, ctx: r.Context()}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
		if sw.status == 0 { // nothing written: net/http answers 200 once this returns
			sw.hold()
			sw.status = http.StatusOK
		}
		if info.inFlight != "" {
			rec.leave(info.inFlight)
		}
		if info.Route == "" {
			info.Route = "unrouted"
		}
		if len(info.Route) > 5 && info.Route[:5] == "admin" {
			return // the admin API does not count itself
		}
		d := time.Since(start)
		h := w.Header()
		rid := h.Get("request-id")
		if rid == "" {
			rid = h.Get("x-ms-request-id")
		}
		rec.add(Entry{Time: start.UTC(), Method: r.Method, Path: r.URL.Path, Route: info.Route, Tenant: info.Tenant,
			Client: info.Client, Status: sw.status, Fault: info.Fault, DurationMS: float64(d.Microseconds()) / 1000,
			RequestID: rid, ClientRequestID: r.Header.Get("client-request-id")})
	})
}

func (rec *Recorder) add(e Entry) {
	if rec.OnEntry != nil {
		rec.OnEntry(e)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c := rec.counts[e.Route]
	if c == nil {
		c = &RouteCount{Route: e.Route, Statuses: map[int]int64{}}
		rec.counts[e.Route] = c
	}
	c.Requests++
	c.Statuses[e.Status]++
	if e.Fault != "" {
		c.Faults++
		if c.Faulted == nil {
			c.Faulted = map[string]int{}
		}
		c.Faulted[e.Fault]++
	}
	if e.Tenant != "" {
		key := strings.ToLower(e.Tenant)
		tc := rec.tenants[key]
		if tc == nil {
			tc = &TenantCount{Tenant: key, Routes: map[string]int64{}, First: e.Time}
			rec.tenants[key] = tc
		}
		tc.Requests++
		tc.Routes[e.Route]++
		if end := e.Time.Add(time.Duration(e.DurationMS * float64(time.Millisecond))); end.After(tc.Last) {
			tc.Last = end
		}
	}
	rec.log[rec.next] = e
	rec.next++
	if rec.next == rec.capacity {
		rec.next, rec.full = 0, true
	}
}

func (rec *Recorder) enter(tenant string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.inFlight[tenant]++
	if n := rec.inFlight[tenant]; n > rec.peak[tenant] {
		rec.peak[tenant] = n
	}
}

func (rec *Recorder) leave(tenant string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.inFlight[tenant]--
	if rec.inFlight[tenant] <= 0 {
		delete(rec.inFlight, tenant)
	}
}

// PeakInFlight returns, per tenant, the most requests (any route, any
// client) served at the same time since the last reset.
func (rec *Recorder) PeakInFlight() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make(map[string]int, len(rec.peak))
	for k, v := range rec.peak {
		out[k] = v
	}
	return out
}

// InFlight returns, per tenant, the requests being served now.
func (rec *Recorder) InFlight() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make(map[string]int, len(rec.inFlight))
	for k, v := range rec.inFlight {
		out[k] = v
	}
	return out
}

// Counts returns a copy of the per-route counters, sorted by route.
func (rec *Recorder) Counts() []RouteCount {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]RouteCount, 0, len(rec.counts))
	for _, c := range rec.counts {
		cp := *c
		cp.Statuses = make(map[int]int64, len(c.Statuses))
		for k, v := range c.Statuses {
			cp.Statuses[k] = v
		}
		if c.Faulted != nil {
			cp.Faulted = make(map[string]int, len(c.Faulted))
			for k, v := range c.Faulted {
				cp.Faulted[k] = v
			}
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

// Count returns the counter of one route (zero value if never hit).
func (rec *Recorder) Count(route string) RouteCount {
	for _, c := range rec.Counts() {
		if c.Route == route {
			return c
		}
	}
	return RouteCount{Route: route, Statuses: map[int]int64{}}
}

// Log returns the most recent requests, oldest first; limit <= 0 means all kept.
func (rec *Recorder) Log(limit int) []Entry {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var all []Entry
	if rec.full {
		all = append(append(all, rec.log[rec.next:]...), rec.log[:rec.next]...)
	} else {
		all = append(all, rec.log[:rec.next]...)
	}
	if limit > 0 && len(all) > limit {
		all = all[len(all)-limit:]
	}
	return all
}

// TenantCount is what the simulator served for one tenant (any client):
// requests in all and per route, the start of the first and the end of the
// last.
type TenantCount struct {
	Tenant   string           `json:"tenant"`
	Requests int64            `json:"requests"`
	Routes   map[string]int64 `json:"routes"`
	First    time.Time        `json:"first"`
	Last     time.Time        `json:"last"`
}

// Tenant returns a copy of one tenant's counter since the last reset.
func (rec *Recorder) Tenant(tenant string) TenantCount {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	key := strings.ToLower(tenant)
	tc := rec.tenants[key]
	if tc == nil {
		return TenantCount{Tenant: key, Routes: map[string]int64{}}
	}
	cp := *tc
	cp.Routes = make(map[string]int64, len(tc.Routes))
	for k, v := range tc.Routes {
		cp.Routes[k] = v
	}
	return cp
}

// Reset clears counters and the log.
func (rec *Recorder) Reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.counts = map[string]*RouteCount{}
	rec.tenants = map[string]*TenantCount{}
	rec.peak = map[string]int{}
	rec.next, rec.full = 0, false
}
