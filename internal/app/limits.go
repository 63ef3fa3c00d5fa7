package app

import (
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropzoneai/dzconnect/internal/config"
	"github.com/dropzoneai/dzconnect/internal/ratelimit"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// newLimiter builds the request rate limiter from the --rate-limit-*
// flags (nil when every limit is off).
func newLimiter(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*ratelimit.Limiter, error) {
	overrides := make(map[uuid.UUID]ratelimit.Limit, len(cfg.RateLimitOrgOverrides))
	for id, o := range cfg.RateLimitOrgOverrides {
		org, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("--rate-limit-org-overrides: %w", err)
		}
		overrides[org] = ratelimit.Limit{RPS: o.RPS, Burst: o.Burst}
	}
	return ratelimit.New(ratelimit.Config{
		Key:          ratelimit.Limit{RPS: cfg.RateLimitKeyRPS, Burst: cfg.RateLimitKeyBurst},
		Org:          ratelimit.Limit{RPS: cfg.RateLimitOrgRPS, Burst: cfg.RateLimitOrgBurst},
		OrgOverrides: overrides,
		MaxBuckets:   cfg.RateLimitMaxBuckets,
		Hold:         cfg.RateLimitHold,
		MaxHeld:      cfg.RateLimitMaxHeld,
		Log:          log,
		Metrics:      reg,
	})
}

// limitOnDemandChecks bounds on-demand checks (--on-demand-check-*) and
// exports their counters.
func limitOnDemandChecks(cfg config.Config, checks *verify.Service, reg prometheus.Registerer) error {
	checks.LimitOnDemand(verify.OnDemandLimits{Total: cfg.OnDemandCheckConcurrency, PerOrg: cfg.OnDemandCheckPerOrg})
	const refusedHelp = "On-demand checks refused (RESOURCE_EXHAUSTED, CHECKS_BUSY) because the replica's or the organization's bound was reached."
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dzconnect_on_demand_checks_in_flight",
			Help: "On-demand checks (CheckIntegration, a new client secret's trial) running on this replica."},
			func() float64 { return float64(checks.OnDemandStats().InFlight) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dzconnect_on_demand_checks_refused_total", Help: refusedHelp,
			ConstLabels: prometheus.Labels{"scope": "replica"}},
			func() float64 { return float64(checks.OnDemandStats().RefusedReplica) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dzconnect_on_demand_checks_refused_total", Help: refusedHelp,
			ConstLabels: prometheus.Labels{"scope": "organization"}},
			func() float64 { return float64(checks.OnDemandStats().RefusedOrganization) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering on-demand check metrics: %w", err)
		}
	}
	return nil
}
