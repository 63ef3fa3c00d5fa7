// Package metrics exposes dzconnect's Prometheus metrics at /metrics:
// checks by outcome and their duration (recorded as checks run), and, read
// from Postgres at scrape time, integrations by state and credentials by
// time left before expiry. Labels never carry organization or tenant IDs.
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
	// CountByExpiry counts credentials per window: expired, 7d, 30d, 90d,
	// later, unknown.
	CountByExpiry(ctx context.Context, now time.Time) (map[string]int, error)
}

// Metrics holds the registry and the instruments.
type Metrics struct {
	reg      *prometheus.Registry
	checks   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	changes  *prometheus.CounterVec
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
	m.reg.MustRegister(m.checks, m.duration, m.changes,
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
	}
	return r, err
}

var (
	byStateDesc  = prometheus.NewDesc("dzconnect_integrations", "Integrations by state.", []string{"state"}, nil)
	byExpiryDesc = prometheus.NewDesc("dzconnect_credentials_expiring", "Client secrets by time left before expiry (window: expired, 7d, 30d, 90d, later, unknown).", []string{"window"}, nil)
)

type fleetCollector struct {
	fleet Fleet
	log   *slog.Logger
}

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- byStateDesc
	ch <- byExpiryDesc
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
	if counts, err := f.fleet.CountByExpiry(ctx, time.Now()); err == nil {
		for window, n := range counts {
			ch <- prometheus.MustNewConstMetric(byExpiryDesc, prometheus.GaugeValue, float64(n), window)
		}
	} else {
		f.log.Warn("metrics: counting credential expiry failed", "error", err)
	}
}
