// Package app wires dzconnect together: the `dzconnect` subcommands (serve,
// migrate, version, gen-admin-key, config-reference), configuration,
// logging, Postgres, Vault, the domain services and the server.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/clock"
	"github.com/dropzoneai/dzconnect/internal/config"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/handlers"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/metrics"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/server"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/telemetry"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/token"
	"github.com/dropzoneai/dzconnect/internal/vault"
	"github.com/dropzoneai/dzconnect/internal/verify"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// Version is set at build time with -ldflags "-X .../internal/app.Version=...".
var Version = "dev"

const usage = `usage: dzconnect <command> [flags]

commands:
  serve             run the API server (gRPC + REST)
  migrate           apply pending database migrations and exit
  version           print the version
  gen-admin-key     print a new random service-admin key for DZCONNECT_ADMIN_KEY
  config-reference  print the configuration reference (Markdown)

Run 'dzconnect serve -h' for the flags; each has a DZCONNECT_* variable.
`

// Main runs a subcommand and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr, nil)
	case "migrate":
		err = migrate(ctx, args[1:], stderr)
	case "version":
		_, _ = fmt.Fprintln(stdout, versionString())
	case "gen-admin-key":
		key, _, _ := auth.NewKey()
		_, _ = fmt.Fprintln(stdout, key)
	case "config-reference":
		_, _ = fmt.Fprint(stdout, config.Markdown())
	case "help", "-h", "--help":
		_, _ = fmt.Fprint(stdout, usage)
	default:
		_, _ = fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "dzconnect:", err)
		return 1
	}
	return 0
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " (" + s.Value + ")"
			}
		}
	}
	return "dzconnect " + v
}

// newLogger builds the process's logger: every line logged with a context
// holding a span (a traced call, or a caller's traceparent) carries its
// trace_id and span_id (telemetry.LogHandler).
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}

func loadConfig(name string, args []string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("dzconnect "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return config.Load(fs, args, os.Getenv)
}

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig("migrate", args, stderr)
	if err != nil {
		return err
	}
	return postgres.Migrate(ctx, cfg.DatabaseURL, newLogger(cfg, stderr))
}

// Started reports a running server's addresses (tests and `make dev`).
type Started func(server.Addrs)

// Option adjusts Serve for tests.
type Option func(*options)

type options struct {
	spanProcessors []sdktrace.SpanProcessor
}

// WithSpanProcessor records the server's spans with sp too (tests:
// tracetest.NewSpanRecorder()), with or without an OTLP exporter.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.spanProcessors = append(o.spanProcessors, sp) }
}

// Serve runs the server until ctx ends (exported for end-to-end tests).
func Serve(ctx context.Context, args []string, logOut io.Writer, started Started, opts ...Option) error {
	return serve(ctx, args, logOut, started, opts...)
}

func serve(ctx context.Context, args []string, logOut io.Writer, started Started, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := loadConfig("serve", args, logOut)
	if err != nil {
		return err
	}
	log := newLogger(cfg, logOut)
	// Tracing (docs/observability.md): with no --otlp-endpoint the no-op
	// provider, no exporter; spans not yet exported are flushed at exit,
	// for at most telemetry.FlushTimeout.
	tel, err := telemetry.New(ctx, telemetry.Config{Endpoint: cfg.OTLPEndpoint, Protocol: cfg.OTLPProtocol, Insecure: cfg.OTLPInsecure,
		SampleRatio: cfg.TraceSampleRatio, ServiceName: "dzconnect", ServiceVersion: Version, Processors: o.spanProcessors})
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(telemetry.FlushTimeout, cfg.ShutdownTimeout))
		defer cancel()
		if err := tel.Shutdown(fctx); err != nil {
			log.Warn("flushing traces", "error", err)
		}
	}()
	// The permission catalog: the embedded default, or --catalog-file,
	// loaded first, so that a bad file stops the start at once, naming the
	// entry; each organization's override is applied on top by checks and
	// provisioning (organization.Catalogs).
	baseCatalog := catalog.Default()
	if cfg.CatalogFile != "" {
		if baseCatalog, err = catalog.LoadFile(cfg.CatalogFile); err != nil {
			return err
		}
	}
	log.InfoContext(ctx, "starting", "version", versionString(), "grpc_addr", cfg.GRPCAddr, "http_addr", cfg.HTTPAddr, "internal_addr", cfg.InternalAddr,
		"vault_addr", cfg.VaultAddr, "vault_mount", cfg.VaultMount, "vault_auth", map[bool]string{true: "approle", false: "token"}[cfg.VaultRoleID != ""],
		"admin_key_configured", cfg.AdminKey != "", "migrate_on_start", cfg.MigrateOnStart, "catalog_version", baseCatalog.Version(),
		"trace_export", tel.Exporting())
	if cfg.MigrateOnStart {
		if err := postgres.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, int32(cfg.DatabaseMaxConn), int32(cfg.DatabaseMinConn))
	if err != nil {
		return err
	}
	db.SetStatementTimeout(cfg.DatabaseTimeout)
	defer db.Close()
	secrets, err := vault.New(ctx, vault.Config{
		Addr: cfg.VaultAddr, CACert: cfg.VaultCACert, Token: cfg.VaultToken,
		AppRoleID: cfg.VaultRoleID, AppRoleSecretID: cfg.VaultSecretID, AppRoleMount: cfg.VaultAppRole,
		Mount: cfg.VaultMount, Prefix: cfg.VaultPrefix, Log: log.With("component", "vault"),
		Timeout: cfg.VaultTimeout,
	})
	if err != nil {
		return err
	}
	defer secrets.Close()
	tlsCfg, internalTLS, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	// Jobs are inserted in the unit of work of the change that needs them
	// (River InsertTx): secret destructions and webhook deliveries.
	inserter, err := jobs.NewInserter(db.Pool())
	if err != nil {
		return err
	}
	secretGC := jobs.NewSecretGC(inserter)
	// Rows left in the former secret_destructions outbox become jobs.
	if n, err := jobs.MoveSecretOutbox(ctx, db, db, inserter); err != nil {
		return fmt.Errorf("moving queued secret destructions to the job queue: %w", err)
	} else if n > 0 {
		log.InfoContext(ctx, "queued secret destructions moved to the job queue", "count", n)
	}
	notifier := webhook.NewNotifier(db, inserter, webhook.DefaultMaxAttempts)
	quotas := quota.New(quota.Limits{quota.Tenants: cfg.QuotaTenants, quota.Integrations: cfg.QuotaIntegrations,
		quota.APIKeys: cfg.QuotaAPIKeys, quota.ConsentLinks: cfg.QuotaConsentLinks}, db)
	tenants := tenant.NewService(db, db, db, db)
	tenants.UseQuota(quotas)
	integrations := integration.NewService(integration.Deps{Tx: db, Store: db, Secrets: secrets, Keys: db, Audit: db, GC: secretGC, Log: log, Tenants: db,
		VerifyWait: cfg.SecretVerifyWait})
	integrations.UseQuota(quotas)
	webhooks := webhook.NewService(db, db, db, db, secretGC, secrets, log)
	webhooks.UseNotifier(notifier) // redeliveries are queued as deliveries are
	clouds := microsoft.DefaultClouds()
	if cfg.MicrosoftEndpointsFile != "" {
		if clouds, err = microsoft.LoadEndpointsFile(cfg.MicrosoftEndpointsFile); err != nil {
			return err
		}
	}
	ms, err := microsoft.New(microsoft.Config{Clouds: clouds, ExtraCAFile: cfg.MicrosoftCAFile, HTTPTimeout: cfg.MicrosoftTimeout})
	if err != nil {
		return err
	}
	consents, err := newConsentService(clouds, db, secrets, consentGrants{ms}, cfg.ConsentConfirmWait, log)
	if err != nil {
		return err
	}
	consents.UseQuota(quotas)
	sharedApps := sharedapp.NewService(sharedapp.Deps{Tx: db, Store: db, Tenants: db, Integrations: db, Secrets: secrets,
		Keys: db, Audit: db, GC: secretGC, Consents: consents, Log: log})
	sharedApps.UseQuota(quotas)
	checks := verify.NewService(verify.Config{ExpiryWarning: cfg.ExpiryWarning, SettleWindow: cfg.SettleWindow},
		verify.Deps{Tx: db, Store: db, Notifier: notifier, Audit: db, Integrations: sharedAwareSecrets{integrations, sharedApps},
			Microsoft: verifyMicrosoft{ms}, Jobs: inserter, SettleQueue: jobs.QueueChecks})
	checks.UseProvisioners(verifyProvisioners{consents})
	orgs := organization.NewService(db, db, db, db, secretGC)
	catalogs := organization.NewCatalogs(db, baseCatalog, db, db, db)
	checks.UseCatalogs(catalogs)
	// A new client secret is tried with the checks before it replaces the
	// active one (integration.Service.UpdateSecret).
	integrations.UseVerifier(checks)
	m := metrics.New(db, log)
	if err := limitOnDemandChecks(cfg, checks, m.Registry()); err != nil {
		return err
	}
	limiter, err := newLimiter(cfg, log, m.Registry())
	if err != nil {
		return err
	}
	// Operations: kinds are registered here by the use cases that start
	// them; the River worker runs them (jobs.Extension below) and one
	// LISTEN connection per replica wakes WaitOperation callers.
	opKinds := operation.NewRegistry()
	opChanges := postgres.NewOperationListener(db, log)
	opCfg := operation.Config{Workers: cfg.OperationWorkers, Lease: cfg.OperationLease, JanitorInterval: cfg.OperationJanitor}
	if cfg.OperationWorkers == 0 {
		opCfg.Workers = -1 // this replica runs no operations
	}
	operations := operation.NewService(opCfg, db, db, opKinds, inserter, opChanges, db, notifier)
	opRunner := operation.NewRunner(opCfg, db, db, opKinds, inserter, notifier, log)
	provisioner := provision.NewService(provision.Deps{
		Tx: db, Tenants: db, Integrations: db, Secrets: secrets, GC: secretGC, Generations: db, Keys: db, Audit: db,
		Operations: operations, Consent: consents,
		Open: func(c consent.Credentials) (provision.Directory, error) {
			return ms.NewDirectory(microsoft.Credentials{Cloud: c.Cloud, Org: c.Org, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret})
		},
		Checks: checks, Rotation: db, Tries: checks, Jobs: inserter, Log: log, RBACWindow: cfg.ProvisionRBACWindow,
		Renewal: db, Notifier: notifier, Renew: provision.RenewConfig{Interval: cfg.RenewalInterval, Jitter: cfg.RenewalJitter,
			PerTenant: cfg.RenewalPerTenant, ReadEvery: cfg.ExpiryReadInterval, Clock: clock.FromFile(cfg.TestClockFile),
			ObserveThrottle: microsoft.WithThrottleObserver},
		Catalogs: catalogs, VerifyDirectory: verifyDirectoryOf,
	})
	provisioner.UseQuota(quotas)
	opKinds.MustRegister(provisioner.Kind())
	opKinds.MustRegister(provisioner.DeprovisionKind())
	opKinds.MustRegister(provisioner.RotateKind())
	apiKeys := auth.NewKeyService(db, db, db, db)
	apiKeys.UseQuota(quotas)
	checker := m.InstrumentChecker(checks)
	tokens := token.NewService(token.Config{}, token.Deps{Tx: db, Store: db, Sessions: tokenSessions{ms: ms, secrets: sharedAwareSecrets{integrations, sharedApps}},
		Retirer: provisioner, Notifier: notifier, Audit: db, Metrics: m.Registry(), Log: log})
	authn := auth.NewAuthenticator(db, db, cfg.AdminKey)
	// Authenticated API keys are cached (--api-key-cache-ttl), kept true
	// by one LISTEN connection per replica (docs/authentication.md).
	keyCache, keyListener, keyDetails, err := apiKeyCache(cfg, db, m, log)
	if err != nil {
		return err
	}
	authn.UseKeyCache(keyCache)
	apiKeys.UseKeyCache(keyCache)
	identities, err := loadIdentities(cfg, log)
	if err != nil {
		return err
	}
	if !identities.Empty() {
		authn.UseIdentities(identities)
	}
	srv, err := server.New(server.Config{
		GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr, InternalAddr: cfg.InternalAddr,
		TLS: tlsCfg, InternalTLS: internalTLS, ShutdownTimeout: cfg.ShutdownTimeout,
		Internal:  map[string]http.Handler{"GET /metrics": m.Handler()},
		Limiter:   limiter,
		Details:   keyDetails,
		Telemetry: tel,
	}, log, authn, handlers.Deps{
		Organizations: orgs, Catalogs: catalogs, APIKeys: apiKeys, Tenants: tenants,
		Integrations: integrations, Audit: db, Webhooks: webhooks,
		Checks: checkAPI{run: checker, list: checks}, Consent: consents, Operations: operations,
		Provisioning: provisioner, SharedApps: sharedApps, Tokens: tokens,
	}, map[string]server.Checker{"postgres": db.Ping, "vault": secrets.Ping})
	if err != nil {
		return err
	}
	// One River client runs all background work of this replica: tenant
	// check batches and the sweep (with --jobs), webhook deliveries, secret
	// destructions and the janitor.
	webhookWorkers := cfg.WebhookWorkers
	if webhookWorkers == 0 {
		webhookWorkers = -1 // this replica sends no deliveries
	}
	deliverer := webhook.NewDeliverer(db, db, secrets, log, webhook.DelivererOptions{Timeout: cfg.WebhookTimeout,
		AllowPrivateNetworks: cfg.WebhookAllowPrivate, Workers: webhookWorkers})
	queue, err := jobs.New(db.Pool(), db, jobs.Config{
		SweepInterval: cfg.SweepInterval, SweepJitter: cfg.SweepJitter,
		Concurrency: cfg.CheckConcurrency, PerTenant: cfg.CheckPerTenant, CheckTimeout: cfg.CheckTimeout,
		BatchSlice: cfg.CheckBatchSlice, RescueAfter: cfg.JobRescueAfter,
		ObserveThrottle: microsoft.WithThrottleObserver, NoChecks: !cfg.Jobs,
		TracerProvider: tel.TracerProvider(),
	}, db, m.InstrumentBatchChecker(checks), log,
		deliverer.Extension(),
		// Settle re-checks (a propagating verdict made final when its
		// window ends) run where checks run.
		jobs.Extension{Queue: jobs.QueueChecks, MaxWorkers: -1, Register: checks.RegisterSettle},
		opRunner.Extension(),
		jobs.SecretGCExtension(secrets),
		provisioner.RetireExtension(),
		tokens.Extension(),
		provisioner.RenewExtension(),
		jobs.JanitorExtension(cfg.JanitorInterval, log,
			jobs.JanitorTask{Name: "pending integrations", Run: func(ctx context.Context) (int, error) {
				return integrations.ReapPending(ctx, cfg.PendingTTL)
			}},
			jobs.JanitorTask{Name: "pending webhooks", Run: func(ctx context.Context) (int, error) {
				return webhooks.Reap(ctx, cfg.PendingTTL)
			}},
			jobs.JanitorTask{Name: "expired tenant throttles", Run: func(ctx context.Context) (int, error) {
				return db.DeleteExpiredThrottles(ctx, db.Conn(), time.Now().Add(-time.Hour))
			}},
			retention(db, postgres.RetainedChecks, cfg.RetainChecks),
			retention(db, postgres.RetainedAudit, cfg.RetainAudit),
			retention(db, postgres.RetainedRequestIDs, cfg.RetainRequestIDs),
			retention(db, postgres.RetainedDeliveries, cfg.RetainDeliveries),
		),
	)
	if err != nil {
		return err
	}
	// The pool's first connections, warmed (postgres.DB.WaitWarm), before
	// this replica takes a job: a sweep on new backends pays their cold
	// catalog caches. Not a condition of start: after the deadline the
	// replica starts all the same.
	wctx, wcancel := context.WithTimeout(ctx, cfg.DatabaseTimeout)
	wstart := time.Now()
	n, werr := db.WaitWarm(wctx)
	wcancel()
	if werr != nil {
		log.WarnContext(ctx, "Postgres connections not all warmed before taking jobs; they serve all the same", "connections", n, "error", werr)
	} else {
		log.DebugContext(ctx, "Postgres connections warmed", "count", n, "duration", time.Since(wstart))
	}
	// River treats cancellation of Start's context as a hard stop that
	// cancels running jobs; the graceful Stop below is the shutdown.
	if err := queue.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("starting the job queue: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := queue.Stop(sctx); err != nil {
			log.Warn("job queue did not stop cleanly; unfinished jobs will be rescued", "error", err)
		}
	}()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		opChanges.Run(runCtx)
	}()
	if keyListener != nil {
		wg.Go(func() { keyListener.Run(runCtx) })
	}
	go func() {
		defer wg.Done()
		tokens.Run(runCtx) // issuance counters, flushed periodically and at shutdown
	}()
	if started != nil {
		go func() {
			if a, err := srv.Addrs(runCtx); err == nil {
				started(a)
			}
		}()
	}
	err = srv.Run(runCtx)
	stop()
	wg.Wait()
	log.Info("stopped")
	return err
}

// checkAPI serves CheckIntegration through the instrumented checker and
// ListChecks from the verification service.
type checkAPI struct {
	run  metrics.Checker
	list *verify.Service
}

// Run is an on-demand check, in a span of its own under the call's.
func (c checkAPI) Run(ctx context.Context, org, id uuid.UUID, trigger string) (verify.Result, error) {
	ctx, span := telemetry.Child(ctx, "check", trace.WithAttributes(telemetry.OrganizationID.String(org.String()),
		telemetry.IntegrationID.String(id.String()), attribute.String("dzconnect.check.trigger", trigger)))
	defer span.End()
	r, err := c.run.Run(ctx, org, id, trigger)
	if err == nil {
		span.SetAttributes(attribute.String("dzconnect.check.outcome", string(r.Check.Outcome)))
	} else {
		telemetry.Fail(span, "check not run")
	}
	return r, err
}

func (c checkAPI) List(ctx context.Context, org, id uuid.UUID, p page.Request) ([]verify.Check, error) {
	return c.list.List(ctx, org, id, p)
}

// retention is the janitor task purging what is older than keep (none
// when keep is 0): batches of 5,000, oldest first, up to 100,000 a run (the
// next run goes on).
func retention(db *postgres.DB, what postgres.Retained, keep time.Duration) jobs.JanitorTask {
	return jobs.JanitorTask{Name: "retention: " + string(what), Run: func(ctx context.Context) (int, error) {
		if keep <= 0 {
			return 0, nil
		}
		const batch = 5000
		cutoff := time.Now().Add(-keep)
		total := 0
		for range 20 {
			n, err := db.PurgeBefore(ctx, what, cutoff, batch)
			total += int(n)
			if err != nil || n < batch {
				return total, err
			}
		}
		return total, nil
	}}
}

// newConsentService builds admin-consent links against the configured
// Microsoft endpoints: each cloud's login authority and Graph audience.
func newConsentService(clouds map[string]microsoft.Endpoints, db *postgres.DB, secrets *vault.Store, ms consentGrants, confirmWait time.Duration, log *slog.Logger) (*consent.Service, error) {
	authorities := make(map[string]string, len(clouds))
	graph := make(map[string]string, len(clouds))
	for slug, e := range clouds {
		authorities[slug] = e.Authority
		graph[slug] = e.Audiences[string(microsoft.APIGraph)]
	}
	return consent.NewService(consent.Config{Authorities: authorities, GraphAudiences: graph, Grants: ms, Confirm: ms, ConfirmWait: confirmWait}, db, db, db, secrets, log)
}

// apiKeyCache builds the API-key cache and its listener (both nil when
// --api-key-cache-ttl is 0), their metrics, and their entry in the
// internal /readyz details.
func apiKeyCache(cfg config.Config, db *postgres.DB, m *metrics.Metrics, log *slog.Logger) (*auth.KeyCache, *postgres.APIKeyListener, map[string]func() any, error) {
	cache := auth.NewKeyCache(cfg.APIKeyCacheTTL, cfg.APIKeyCacheSize)
	if cache == nil {
		return nil, nil, map[string]func() any{"api_key_cache": func() any { return map[string]string{"status": "off"} }}, nil
	}
	if err := cache.Register(m.Registry()); err != nil {
		return nil, nil, nil, err
	}
	l := postgres.NewAPIKeyListener(db, cache, log.With("component", "api-key-listener"))
	return cache, l, map[string]func() any{"api_key_cache": func() any {
		return struct {
			auth.KeyCacheStats
			Listener postgres.APIKeyListenerState `json:"listener"`
		}{cache.Stats(), l.State()}
	}}, nil
}
