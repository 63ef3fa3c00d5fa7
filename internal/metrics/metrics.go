// Package metrics exposes dzconnect's Prometheus metrics at /metrics:
// checks by outcome and their duration (recorded as checks run), and, read
// from Postgres at scrape time, integrations by state and credentials by
// time left before expiry. Labels never carry organization, tenant or
// integration IDs: a label's values are a short fixed list, so a fleet of
// any size has the same number of series. An SRE alerts on the fleet
// (dzconnect_credential_min_days_left{management="customer-managed"} < 7,
// or provisioned credentials in the 7d window: renewal is failing) and
// finds the integrations with ListIntegrations expire_before.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dropzoneai/dzconnect/internal/verify"
)

// Fleet reads the fleet's state for scrapes.
type Fleet interface {
	// CountByState counts visible integrations per state.
	CountByState(ctx context.Context) (map[string]int, error)
	// CountByExpiry counts visible integrations per management mode and
	// window of their active credential's end: expired, 7d, 30d, 90d,
	// later, unknown (no end recorded, or no credential of their own).
	CountByExpiry(ctx context.Context, now time.Time) ([]ExpiryCount, error)
}

// ExpiryCount is the number of integrations of one management mode whose
// active credential ends in one window, and the earliest end among them
// (nil in the unknown window).
type ExpiryCount struct {
	Management, Window string
	N                  int
	EarliestEnd        *time.Time
}

// Metrics holds the registry and the instruments.
type Metrics struct {
	reg      *prometheus.Registry
	checks   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	changes  *prometheus.CounterVec
	warned   prometheus.Counter
}

// New registers every metric; fleet may be nil.
func New(fleet Fleet, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dzconnect_checks_total", Help: "Integration checks run, by outcome and trigger.",
	}, []string{"outcome", "trigger"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dzconnect_check_duration_seconds", Help: "Duration of integration checks.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"trigger"})
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dzconnect_integration_state_changes_total", Help: "Changes of integration state, by new state.",
	}, []string{"state"})
	m.warned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dzconnect_credential_expiry_announcements_total",
		Help: "Customer-managed credentials announced as entering the expiry window (integration.credential_expiring), once per credential.",
	})
	m.reg.MustRegister(m.checks, m.duration, m.changes, m.warned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if fleet != nil {
		m.reg.MustRegister(&fleetCollector{fleet: fleet, log: log})
	}
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry lets other packages register their metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Checker is the check use case, instrumented by InstrumentChecker.
type Checker interface {
	Run(ctx context.Context, org, id uuid.UUID, trigger string) (verify.Result, error)
}

type instrumented struct {
	Checker
	m *Metrics
}

// InstrumentChecker counts and times every check run through c.
func (m *Metrics) InstrumentChecker(c Checker) Checker { return instrumented{Checker: c, m: m} }

func (i instrumented) Run(ctx context.Context, org, id uuid.UUID, trigger string) (verify.Result, error) {
	start := time.Now()
	r, err := i.Checker.Run(ctx, org, id, trigger)
	if err == nil {
		i.m.checks.WithLabelValues(string(r.Check.Outcome), trigger).Inc()
		i.m.duration.WithLabelValues(trigger).Observe(time.Since(start).Seconds())
		if r.Changed() {
			i.m.changes.WithLabelValues(string(r.Check.Outcome)).Inc()
		}
		if r.Warned {
			i.m.warned.Inc()
		}
	}
	return r, err
}

// BatchChecker is the check use case in two parts, as the sweep's batches
// run it (Check: the Microsoft calls; Commit: the record), instrumented by
// InstrumentBatchChecker.
type BatchChecker interface {
	Check(ctx context.Context, t verify.Target, trigger string) (verify.Pending, error)
	Commit(ctx context.Context, p verify.Pending) (verify.Result, error)
}

type instrumentedBatch struct {
	BatchChecker
	m *Metrics
}

// InstrumentBatchChecker counts every check committed through c and times
// it from its start to its record, as InstrumentChecker does for Run.
func (m *Metrics) InstrumentBatchChecker(c BatchChecker) BatchChecker {
	return instrumentedBatch{BatchChecker: c, m: m}
}

func (i instrumentedBatch) Commit(ctx context.Context, p verify.Pending) (verify.Result, error) {
	r, err := i.BatchChecker.Commit(ctx, p)
	if err == nil {
		i.m.checks.WithLabelValues(string(r.Check.Outcome), r.Check.Trigger).Inc()
		i.m.duration.WithLabelValues(r.Check.Trigger).Observe(time.Since(r.Check.Start).Seconds())
		if r.Changed() {
			i.m.changes.WithLabelValues(string(r.Check.Outcome)).Inc()
		}
		if r.Warned {
			i.m.warned.Inc()
		}
	}
	return r, err
}

var (
	byStateDesc  = prometheus.NewDesc("dzconnect_integrations", "Integrations by state.", []string{"state"}, nil)
	byExpiryDesc = prometheus.NewDesc("dzconnect_credentials_expiring",
		"Integrations by time left before their active credential expires (window: expired, 7d, 30d, 90d, later, unknown) and management mode (customer-managed: someone has to replace it; provisioned: dzconnect renews it).",
		[]string{"window", "management"}, nil)
	minDaysDesc = prometheus.NewDesc("dzconnect_credential_min_days_left",
		"Days left before the earliest-expiring active credential of the fleet expires, per management mode (negative: expired); absent when no end is known.",
		[]string{"management"}, nil)
)

type fleetCollector struct {
	fleet Fleet
	log   *slog.Logger
}

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- byStateDesc
	ch <- byExpiryDesc
	ch <- minDaysDesc
}

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := f.fleet.CountByState(ctx); err == nil {
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(byStateDesc, prometheus.GaugeValue, float64(n), state)
		}
	} else {
		f.log.Warn("metrics: counting integrations failed", "error", err)
	}
	now := time.Now()
	counts, err := f.fleet.CountByExpiry(ctx, now)
	if err != nil {
		f.log.Warn("metrics: counting credential expiry failed", "error", err)
		return
	}
	for _, c := range expiryWindows(counts) {
		ch <- prometheus.MustNewConstMetric(byExpiryDesc, prometheus.GaugeValue, float64(c.N), c.Window, c.Management)
	}
	for mode, days := range minDaysLeft(counts, now) {
		ch <- prometheus.MustNewConstMetric(minDaysDesc, prometheus.GaugeValue, days, mode)
	}
}

// The windows and modes every scrape reports (zero included), so a series
// does not vanish when its count drops to zero.
var (
	windows = []string{"expired", "7d", "30d", "90d", "later", "unknown"}
	modes   = []string{"customer-managed", "provisioned", "shared"}
)

// expiryWindows returns a count for every window and mode, zeros included.
func expiryWindows(counts []ExpiryCount) []ExpiryCount {
	n := map[[2]string]int{}
	for _, c := range counts {
		n[[2]string{c.Window, c.Management}] += c.N
	}
	out := make([]ExpiryCount, 0, len(windows)*len(modes))
	for _, m := range modes {
		for _, w := range windows {
			out = append(out, ExpiryCount{Management: m, Window: w, N: n[[2]string{w, m}]})
			delete(n, [2]string{w, m})
		}
	}
	for k, v := range n { // a mode or window added later still shows
		out = append(out, ExpiryCount{Management: k[1], Window: k[0], N: v})
	}
	return out
}

// minDaysLeft returns, per management mode, the days (fractional) from
// now until the earliest known end.
func minDaysLeft(counts []ExpiryCount, now time.Time) map[string]float64 {
	out := map[string]float64{}
	for _, c := range counts {
		if c.EarliestEnd == nil {
			continue
		}
		d := c.EarliestEnd.Sub(now).Hours() / 24
		if cur, ok := out[c.Management]; !ok || d < cur {
			out[c.Management] = d
		}
	}
	return out
}
