// Package config loads dzconnect's configuration from flags and
// DZCONNECT_* environment variables (a flag wins over its variable),
// validates all of it at once, and describes itself for the docs
// (docs/configuration.md is generated from Reference).
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything `dzconnect serve` needs.
type Config struct {
	GRPCAddr                                                         string
	HTTPAddr                                                         string
	InternalAddr                                                     string
	TLSCertFile                                                      string
	TLSKeyFile                                                       string
	TLSClientCA                                                      string
	AllowPlaintext                                                   bool
	OIDCIssuer                                                       string
	OIDCAudience                                                     string
	OIDCOrgClaim                                                     string
	OIDCRoleClaim                                                    string
	OIDCCAFile                                                       string
	AuthConfigFile                                                   string
	DatabaseURL                                                      string
	DatabaseMaxConn                                                  int
	DatabaseMinConn                                                  int
	QuotaTenants, QuotaIntegrations, QuotaAPIKeys, QuotaConsentLinks int
	RateLimitOrgRPS, RateLimitKeyRPS                                 float64
	RateLimitOrgBurst, RateLimitKeyBurst, RateLimitMaxBuckets        int
	RateLimitOrgOverrides                                            map[string]RateOverride // by organization ID
	RateLimitHold                                                    time.Duration
	RateLimitMaxHeld                                                 int
	OnDemandCheckConcurrency, OnDemandCheckPerOrg                    int
	RetainChecks, RetainAudit, RetainRequestIDs, RetainDeliveries    time.Duration
	MigrateOnStart                                                   bool
	VaultAddr                                                        string
	VaultToken                                                       string
	VaultRoleID                                                      string
	VaultSecretID                                                    string
	VaultAppRole                                                     string
	VaultMount                                                       string
	VaultPrefix                                                      string
	VaultCACert                                                      string
	VaultInsecure                                                    bool
	VaultTimeout                                                     time.Duration
	DatabaseTimeout                                                  time.Duration
	AdminKey                                                         string
	LogLevel                                                         string
	LogFormat                                                        string
	ShutdownTimeout                                                  time.Duration
	JanitorInterval                                                  time.Duration
	PendingTTL                                                       time.Duration

	MicrosoftEndpointsFile string
	MicrosoftCAFile        string
	MicrosoftTimeout       time.Duration
	APIKeyCacheTTL         time.Duration
	APIKeyCacheSize        int
	CatalogFile            string
	ExpiryWarning          time.Duration
	SettleWindow           time.Duration
	SecretVerifyWait       time.Duration
	ConsentConfirmWait     time.Duration
	Jobs                   bool
	SweepInterval          time.Duration
	SweepJitter            time.Duration
	CheckConcurrency       int
	CheckPerTenant         int
	CheckTimeout           time.Duration
	JobRescueAfter         time.Duration
	CheckBatchSlice        time.Duration
	WebhookWorkers         int
	OperationWorkers       int
	OperationLease         time.Duration
	OperationJanitor       time.Duration
	ProvisionRBACWindow    time.Duration
	WebhookTimeout         time.Duration
	WebhookAllowPrivate    bool
	RenewalInterval        time.Duration
	RenewalJitter          time.Duration
	RenewalPerTenant       int
	ExpiryReadInterval     time.Duration
	TestClockFile          string
	OTLPEndpoint           string
	OTLPProtocol           string
	OTLPInsecure           bool
	TraceSampleRatio       float64
}

// RateOverride is one organization's request rate limit
// (--rate-limit-org-overrides).
type RateOverride struct {
	RPS   float64
	Burst int
}

// Option describes one setting.
type Option struct {
	Flag, Env, Default, Usage string
	Secret                    bool
	set                       func(*Config, string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration like 30s or 5m")
		}
		*p(c) = d
		return nil
	}
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*p(c) = b
		return nil
	}
}

func ratio(p func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return errors.New("must be a number from 0 to 1")
		}
		*p(c) = f
		return nil
	}
}

func intRange(p func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		*p(c) = n
		return nil
	}
}

func floatRange(p func(*Config) *float64, lo, hi float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < lo || f > hi {
			return fmt.Errorf("must be a number from %g to %g", lo, hi)
		}
		*p(c) = f
		return nil
	}
}

// rateOverrides parses ORG_ID=RPS[:BURST],... (a UUID, then a rate of 0
// to 1e6 per second; BURST defaults to the rate rounded up).
func rateOverrides(c *Config, v string) error {
	c.RateLimitOrgOverrides = nil
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	out := map[string]RateOverride{}
	for _, item := range strings.Split(v, ",") {
		org, rate, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || !isUUID(org) {
			return fmt.Errorf("%q: want ORGANIZATION_ID=RPS or ORGANIZATION_ID=RPS:BURST (the organization's UUID)", item)
		}
		rpsText, burstText, hasBurst := strings.Cut(rate, ":")
		rps, err := strconv.ParseFloat(rpsText, 64)
		if err != nil || rps < 0 || rps > 1e6 {
			return fmt.Errorf("%q: the rate must be a number from 0 (unlimited) to 1e6", item)
		}
		o := RateOverride{RPS: rps}
		if hasBurst {
			if o.Burst, err = strconv.Atoi(burstText); err != nil || o.Burst < 1 || o.Burst > 1e6 {
				return fmt.Errorf("%q: the burst must be a whole number from 1 to 1000000", item)
			}
		}
		if _, dup := out[strings.ToLower(org)]; dup {
			return fmt.Errorf("organization %s is named twice", org)
		}
		out[strings.ToLower(org)] = o
	}
	c.RateLimitOrgOverrides = out
	return nil
}

// isUUID reports whether s is a UUID in its 36-character form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// textValue is a flag holding text; boolean options accept a bare --flag.
type textValue struct {
	s      string
	isBool bool
}

func (v *textValue) String() string     { return v.s }
func (v *textValue) Set(s string) error { v.s = s; return nil }
func (v *textValue) IsBoolFlag() bool   { return v.isBool }

// Reference lists every option, in documentation order.
var Reference = []Option{
	{"grpc-addr", "DZCONNECT_GRPC_ADDR", "127.0.0.1:9090", "gRPC listen address", false, str(func(c *Config) *string { return &c.GRPCAddr })},
	{"http-addr", "DZCONNECT_HTTP_ADDR", "127.0.0.1:8080", "REST gateway, health and OpenAPI listen address", false, str(func(c *Config) *string { return &c.HTTPAddr })},
	{"internal-addr", "DZCONNECT_INTERNAL_ADDR", "127.0.0.1:9091", "internal listener (operators and Prometheus, not API callers): /metrics, /debug/pprof/, /readyz with each dependency's state and error, gRPC reflection and health; no authentication, so keep it on loopback or a network only operators reach; \"off\" disables it", false, str(func(c *Config) *string { return &c.InternalAddr })},
	{"tls-cert-file", "DZCONNECT_TLS_CERT_FILE", "", "PEM certificate for all listeners (gRPC, HTTP, internal); empty serves plaintext", false, str(func(c *Config) *string { return &c.TLSCertFile })},
	{"tls-key-file", "DZCONNECT_TLS_KEY_FILE", "", "PEM private key matching tls-cert-file", false, str(func(c *Config) *string { return &c.TLSKeyFile })},
	{"tls-client-ca", "DZCONNECT_TLS_CLIENT_CA", "", "PEM CA bundle: the gRPC and HTTP listeners require a client certificate signed by it (mutual TLS; needs tls-cert-file); a certificate identity named in auth-config-file authenticates the caller without a bearer token (docs/authentication.md); the internal listener asks for none", false, str(func(c *Config) *string { return &c.TLSClientCA })},
	{"allow-plaintext", "DZCONNECT_ALLOW_PLAINTEXT", "false", "serve without TLS on a non-loopback address (TLS terminated in front of dzconnect, e.g. by a service mesh), and export traces without TLS to a non-loopback collector (otlp-insecure); without it, plaintext listeners and plaintext trace export must be loopback", false, boolean(func(c *Config) *bool { return &c.AllowPlaintext })},
	{"database-url", "DZCONNECT_DATABASE_URL", "", "Postgres URL (required), e.g. postgres://user@host:5432/dzconnect", true, str(func(c *Config) *string { return &c.DatabaseURL })},
	{"database-max-conns", "DZCONNECT_DATABASE_MAX_CONNS", "20", "maximum Postgres connections", false, intRange(func(c *Config) *int { return &c.DatabaseMaxConn }, 1, 1000)},
	{"database-min-conns", "DZCONNECT_DATABASE_MIN_CONNS", "10", "Postgres connections kept open (at most database-max-conns), replaced in the background as they age out; each new connection plans the sweep's statements before it serves, and a replica opens these before it takes jobs, so that sweeps do not pay for new Postgres backends (docs/verification.md)", false, intRange(func(c *Config) *int { return &c.DatabaseMinConn }, 0, 1000)},
	{"database-timeout", "DZCONNECT_DATABASE_TIMEOUT", "10s", "deadline of one Postgres statement (waiting for a pooled connection included), and of a transaction's begin and commit: a stalled Postgres makes calls fail Unavailable naming it after this, and /readyz report it", false, dur(func(c *Config) *time.Duration { return &c.DatabaseTimeout })},
	{"api-key-cache-ttl", "DZCONNECT_API_KEY_CACHE_TTL", "30s", "how long an authenticated API key is remembered, so calls skip its Postgres lookup; a deleted or changed key is forgotten on every replica as soon as its change commits (LISTEN/NOTIFY), and the cache is bypassed while this replica's listener is disconnected; 0 turns the cache off (docs/authentication.md)", false, dur(func(c *Config) *time.Duration { return &c.APIKeyCacheTTL })},
	{"api-key-cache-size", "DZCONNECT_API_KEY_CACHE_SIZE", "10000", "most API keys cached per replica (least recently used out first)", false, intRange(func(c *Config) *int { return &c.APIKeyCacheSize }, 1, 10000000)},
	{"migrate-on-start", "DZCONNECT_MIGRATE_ON_START", "true", "apply pending migrations at start-up, under an advisory lock", false, boolean(func(c *Config) *bool { return &c.MigrateOnStart })},
	{"vault-addr", "DZCONNECT_VAULT_ADDR", "", "Vault address (required), e.g. https://vault:8200", false, str(func(c *Config) *string { return &c.VaultAddr })},
	{"vault-token", "DZCONNECT_VAULT_TOKEN", "", "Vault token (token auth)", true, str(func(c *Config) *string { return &c.VaultToken })},
	{"vault-role-id", "DZCONNECT_VAULT_ROLE_ID", "", "AppRole role_id (AppRole auth, instead of a token)", false, str(func(c *Config) *string { return &c.VaultRoleID })},
	{"vault-secret-id", "DZCONNECT_VAULT_SECRET_ID", "", "AppRole secret_id", true, str(func(c *Config) *string { return &c.VaultSecretID })},
	{"vault-approle-mount", "DZCONNECT_VAULT_APPROLE_MOUNT", "approle", "path of the AppRole auth method", false, str(func(c *Config) *string { return &c.VaultAppRole })},
	{"vault-mount", "DZCONNECT_VAULT_MOUNT", "secret", "KV v2 mount holding client secrets", false, str(func(c *Config) *string { return &c.VaultMount })},
	{"vault-prefix", "DZCONNECT_VAULT_PREFIX", "dzconnect", "path prefix inside the mount", false, str(func(c *Config) *string { return &c.VaultPrefix })},
	{"vault-ca-cert", "DZCONNECT_VAULT_CA_CERT", "", "PEM CA bundle to trust for Vault", false, str(func(c *Config) *string { return &c.VaultCACert })},
	{"vault-timeout", "DZCONNECT_VAULT_TIMEOUT", "10s", "deadline of one Vault operation (retries and a re-login included): a stalled Vault makes calls fail Unavailable after this, and /readyz report it", false, dur(func(c *Config) *time.Duration { return &c.VaultTimeout })},
	{"vault-allow-insecure", "DZCONNECT_VAULT_ALLOW_INSECURE", "false", "development only: allow an http:// Vault address on another host than this one, and VAULT_SKIP_VERIFY; without it Vault is reached over https (http only on loopback)", false, boolean(func(c *Config) *bool { return &c.VaultInsecure })},
	{"oidc-issuer", "DZCONNECT_OIDC_ISSUER", "", "accept JWT bearer tokens from this OpenID Connect issuer (https URL; discovery and JWKS); several issuers: auth-config-file", false, str(func(c *Config) *string { return &c.OIDCIssuer })},
	{"oidc-audience", "DZCONNECT_OIDC_AUDIENCE", "", "the audience (aud) tokens of oidc-issuer must carry (required with oidc-issuer)", false, str(func(c *Config) *string { return &c.OIDCAudience })},
	{"oidc-org-claim", "DZCONNECT_OIDC_ORG_CLAIM", "dzconnect_org", "claim of an oidc-issuer token naming the caller's organization (its ID or organizations/{id})", false, str(func(c *Config) *string { return &c.OIDCOrgClaim })},
	{"oidc-role-claim", "DZCONNECT_OIDC_ROLE_CLAIM", "dzconnect_role", "claim of an oidc-issuer token holding the caller's role: admin, operator, viewer or consumer", false, str(func(c *Config) *string { return &c.OIDCRoleClaim })},
	{"oidc-ca-file", "DZCONNECT_OIDC_CA_FILE", "", "PEM CA bundle trusted for oidc-issuer's discovery and JWKS in addition to the system roots", false, str(func(c *Config) *string { return &c.OIDCCAFile })},
	{"auth-config-file", "DZCONNECT_AUTH_CONFIG_FILE", "", "JSON file with several OIDC issuers, subject and certificate-identity mappings to an organization and role (docs/authentication.md); combines with oidc-issuer", false, str(func(c *Config) *string { return &c.AuthConfigFile })},
	{"admin-key", "DZCONNECT_ADMIN_KEY", "", "bootstrap service-admin API key (dzk_ followed by at least 32 characters); empty disables it", true, str(func(c *Config) *string { return &c.AdminKey })},
	{"log-level", "DZCONNECT_LOG_LEVEL", "info", "debug, info, warn or error", false, str(func(c *Config) *string { return &c.LogLevel })},
	{"log-format", "DZCONNECT_LOG_FORMAT", "json", "json or text", false, str(func(c *Config) *string { return &c.LogFormat })},
	{"otlp-endpoint", "DZCONNECT_OTLP_ENDPOINT", "", "OpenTelemetry collector to export traces to (docs/observability.md): host:port, or an http(s) URL; empty: no exporter (trace context from callers still reaches the log lines)", false, str(func(c *Config) *string { return &c.OTLPEndpoint })},
	{"otlp-protocol", "DZCONNECT_OTLP_PROTOCOL", "grpc", "OTLP protocol of otlp-endpoint: grpc (usually port 4317) or http (protobuf, usually 4318)", false, str(func(c *Config) *string { return &c.OTLPProtocol })},
	{"otlp-insecure", "DZCONNECT_OTLP_INSECURE", "false", "export traces without TLS (as an http:// otlp-endpoint does); only to a loopback collector unless allow-plaintext", false, boolean(func(c *Config) *bool { return &c.OTLPInsecure })},
	{"trace-sample-ratio", "DZCONNECT_TRACE_SAMPLE_RATIO", "1", "share of traces started here that are sampled (0 to 1); a call with a traceparent follows its caller's decision", false, ratio(func(c *Config) *float64 { return &c.TraceSampleRatio })},
	{"shutdown-timeout", "DZCONNECT_SHUTDOWN_TIMEOUT", "20s", "how long in-flight calls may finish on SIGTERM", false, dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"janitor-interval", "DZCONNECT_JANITOR_INTERVAL", "1m", "how often the janitor job (on the elected leader) removes stale pending creates and expired tenant throttles", false, dur(func(c *Config) *time.Duration { return &c.JanitorInterval })},
	{"microsoft-endpoints-file", "DZCONNECT_MICROSOFT_ENDPOINTS_FILE", "", "JSON file overriding Microsoft endpoints per cloud (key \"*\" for every cloud; msftsim's endpoints.json works as that entry)", false, str(func(c *Config) *string { return &c.MicrosoftEndpointsFile })},
	{"microsoft-ca-file", "DZCONNECT_MICROSOFT_CA_FILE", "", "PEM CA bundle trusted for Microsoft endpoints in addition to the system roots", false, str(func(c *Config) *string { return &c.MicrosoftCAFile })},
	{"microsoft-timeout", "DZCONNECT_MICROSOFT_TIMEOUT", "20s", "deadline of one HTTP exchange with Microsoft (connecting, sending, the answer's headers and reading its body; Retry-After waits between attempts are not counted): a stalled Microsoft fails the call as a transient Microsoft error naming this after it, and is not sent again at once", false, dur(func(c *Config) *time.Duration { return &c.MicrosoftTimeout })},
	{"catalog-file", "DZCONNECT_CATALOG_FILE", "", "JSON permission catalog replacing the embedded default as a whole (format: internal/catalog/default.json; validated at start: an invalid entry stops the start, naming it)", false, str(func(c *Config) *string { return &c.CatalogFile })},
	{"expiry-warning", "DZCONNECT_EXPIRY_WARNING", "720h", "a credential expiring within this is a warning and announced once", false, dur(func(c *Config) *time.Duration { return &c.ExpiryWarning })},
	{"settle-window", "DZCONNECT_SETTLE_WINDOW", "5m", "after a change, replication-lag errors count as propagating, not broken, for this long", false, dur(func(c *Config) *time.Duration { return &c.SettleWindow })},
	{"secret-verify-wait", "DZCONNECT_SECRET_VERIFY_WAIT", "20s", "UpdateIntegration tries a new client secret that Microsoft answers as not replicated yet again for up to this long before refusing it (the current secret stays)", false, dur(func(c *Config) *time.Duration { return &c.SecretVerifyWait })},
	{"consent-confirm-wait", "DZCONNECT_CONSENT_CONFIRM_WAIT", "20s", "CompleteAdminConsent asks Microsoft to confirm a provisioner's consent (a token in the tenant) and waits up to this long for the service principal the consent made to replicate before refusing to record it", false, dur(func(c *Config) *time.Duration { return &c.ConsentConfirmWait })},
	{"jobs", "DZCONNECT_JOBS", "true", "run tenant check batches on this replica (the sweep that enqueues them, webhook deliveries, secret destruction and the janitor run on every replica, on the same job queue)", false, boolean(func(c *Config) *bool { return &c.Jobs })},
	{"sweep-interval", "DZCONNECT_SWEEP_INTERVAL", "6h", "every integration is checked about this often (the leader looks for due ones every interval/12, 10s to 5m, and at start)", false, dur(func(c *Config) *time.Duration { return &c.SweepInterval })},
	{"sweep-jitter", "DZCONNECT_SWEEP_JITTER", "30m", "a sweep's tenant check batches are spread over this window", false, dur(func(c *Config) *time.Duration { return &c.SweepJitter })},
	{"check-concurrency", "DZCONNECT_CHECK_CONCURRENCY", "25", "a replica runs this × check-per-tenant checks at once, over up to twice this many tenant check batches", false, intRange(func(c *Config) *int { return &c.CheckConcurrency }, 1, 1000)},
	{"check-per-tenant", "DZCONNECT_CHECK_PER_TENANT", "2", "checks running at once per customer tenant, across all replicas (a tenant has at most one check batch at a time)", false, intRange(func(c *Config) *int { return &c.CheckPerTenant }, 1, 100)},
	{"check-timeout", "DZCONNECT_CHECK_TIMEOUT", "2m", "deadline of one scheduled check", false, dur(func(c *Config) *time.Duration { return &c.CheckTimeout })},
	{"check-batch-slice", "DZCONNECT_CHECK_BATCH_SLICE", "1m", "a tenant check batch starts checks for this long, then continues as the same job (short batches: a crash strands little)", false, dur(func(c *Config) *time.Duration { return &c.CheckBatchSlice })},
	{"job-rescue-after", "DZCONNECT_JOB_RESCUE_AFTER", "4m", "a job still running this long (its replica died) is run again elsewhere; applies to every job kind, so it must exceed check-batch-slice + check-timeout", false, dur(func(c *Config) *time.Duration { return &c.JobRescueAfter })},
	{"webhook-allow-private-networks", "DZCONNECT_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false", "let webhook deliveries reach loopback and private addresses (development, on-premises receivers); metadata and link-local addresses stay refused", false, boolean(func(c *Config) *bool { return &c.WebhookAllowPrivate })},
	{"pending-ttl", "DZCONNECT_PENDING_TTL", "15m", "age after which an unfinished integration create is rolled back", false, dur(func(c *Config) *time.Duration { return &c.PendingTTL })},
	{"webhook-workers", "DZCONNECT_WEBHOOK_WORKERS", "16", "webhook deliveries sent at once per replica (River queue webhooks); 0: this replica sends none", false, intRange(func(c *Config) *int { return &c.WebhookWorkers }, 0, 1000)},
	{"quota-tenants", "DZCONNECT_QUOTA_TENANTS", "5000", "tenants one organization may hold (0: unlimited); over it, CreateTenant is RESOURCE_EXHAUSTED (QUOTA_EXCEEDED)", false, intRange(func(c *Config) *int { return &c.QuotaTenants }, 0, 10000000)},
	{"quota-integrations", "DZCONNECT_QUOTA_INTEGRATIONS", "20000", "integrations one organization may hold, however made (0: unlimited)", false, intRange(func(c *Config) *int { return &c.QuotaIntegrations }, 0, 10000000)},
	{"quota-api-keys", "DZCONNECT_QUOTA_API_KEYS", "100", "API keys one organization may hold (0: unlimited)", false, intRange(func(c *Config) *int { return &c.QuotaAPIKeys }, 0, 100000)},
	{"quota-consent-links", "DZCONNECT_QUOTA_CONSENT_LINKS", "1000", "admin-consent links one organization may have outstanding (issued, unused, unexpired; 0: unlimited)", false, intRange(func(c *Config) *int { return &c.QuotaConsentLinks }, 0, 1000000)},
	{"rate-limit-org-rps", "DZCONNECT_RATE_LIMIT_ORG_RPS", "100", "requests per second one organization may make, all its callers together, per replica (token bucket; 0: no limit); over it, RESOURCE_EXHAUSTED (RATE_LIMITED) with RetryInfo, HTTP 429 with Retry-After (docs/limits.md)", false, floatRange(func(c *Config) *float64 { return &c.RateLimitOrgRPS }, 0, 1e6)},
	{"rate-limit-org-burst", "DZCONNECT_RATE_LIMIT_ORG_BURST", "200", "requests one organization may make at once after idling (the bucket's size; 0: rate-limit-org-rps rounded up)", false, intRange(func(c *Config) *int { return &c.RateLimitOrgBurst }, 0, 1000000)},
	{"rate-limit-key-rps", "DZCONNECT_RATE_LIMIT_KEY_RPS", "50", "requests per second one caller (an API key, an OIDC subject, a client-certificate identity) may make, per replica (0: no limit); the service admin is not limited", false, floatRange(func(c *Config) *float64 { return &c.RateLimitKeyRPS }, 0, 1e6)},
	{"rate-limit-key-burst", "DZCONNECT_RATE_LIMIT_KEY_BURST", "100", "requests one caller may make at once after idling (0: rate-limit-key-rps rounded up)", false, intRange(func(c *Config) *int { return &c.RateLimitKeyBurst }, 0, 1000000)},
	{"rate-limit-org-overrides", "DZCONNECT_RATE_LIMIT_ORG_OVERRIDES", "", "per-organization rate limits replacing rate-limit-org-rps/-burst: ORGANIZATION_ID=RPS[:BURST],... (RPS 0: that organization is not limited)", false, rateOverrides},
	{"rate-limit-hold", "DZCONNECT_RATE_LIMIT_HOLD", "1s", "a caller that keeps calling while refused (more refusals within a second than its bucket's burst) gets its refusals answered after this delay instead of at once, so a client retrying in a loop slows down (0: answer every refusal at once; at most 10s)", false, dur(func(c *Config) *time.Duration { return &c.RateLimitHold })},
	{"rate-limit-max-held", "DZCONNECT_RATE_LIMIT_MAX_HELD", "1000", "refusals a replica holds at once, about (at most this many holds start per rate-limit-hold); beyond it refusals are answered at once", false, intRange(func(c *Config) *int { return &c.RateLimitMaxHeld }, 1, 1000000)},
	{"rate-limit-max-buckets", "DZCONNECT_RATE_LIMIT_MAX_BUCKETS", "100000", "token buckets a replica keeps per scope (callers, organizations); a bucket that refilled is dropped anyway, beyond this the least recently used ones are", false, intRange(func(c *Config) *int { return &c.RateLimitMaxBuckets }, 1, 10000000)},
	{"on-demand-check-concurrency", "DZCONNECT_ON_DEMAND_CHECK_CONCURRENCY", "20", "on-demand checks (CheckIntegration, and UpdateIntegration trying a new client secret) running at once per replica (0: no bound); over it, RESOURCE_EXHAUSTED (CHECKS_BUSY) with RetryInfo, nothing recorded", false, intRange(func(c *Config) *int { return &c.OnDemandCheckConcurrency }, 0, 10000)},
	{"on-demand-check-per-organization", "DZCONNECT_ON_DEMAND_CHECK_PER_ORGANIZATION", "5", "on-demand checks one organization may run at once per replica (0: only on-demand-check-concurrency bounds it)", false, intRange(func(c *Config) *int { return &c.OnDemandCheckPerOrg }, 0, 10000)},
	{"retention-checks", "DZCONNECT_RETENTION_CHECKS", "2160h", "checks older than this are deleted by the janitor, except each integration's latest (0: keep all)", false, dur(func(c *Config) *time.Duration { return &c.RetainChecks })},
	{"retention-audit", "DZCONNECT_RETENTION_AUDIT", "9600h", "audit events older than this (400 days) are deleted by the janitor (0: keep all)", false, dur(func(c *Config) *time.Duration { return &c.RetainAudit })},
	{"retention-request-ids", "DZCONNECT_RETENTION_REQUEST_IDS", "720h", "a create's request_id is honoured (a replay returns the first result) for this long, then forgotten (0: forever)", false, dur(func(c *Config) *time.Duration { return &c.RetainRequestIDs })},
	{"retention-deliveries", "DZCONNECT_RETENTION_DELIVERIES", "720h", "finished webhook deliveries older than this are deleted by the janitor (0: keep all)", false, dur(func(c *Config) *time.Duration { return &c.RetainDeliveries })},
	{"operation-workers", "DZCONNECT_OPERATION_WORKERS", "20", "operations (provisioning, rotation, ...) run at once per replica (River queue operations); 0: this replica runs none", false, intRange(func(c *Config) *int { return &c.OperationWorkers }, 0, 1000)},
	{"operation-lease", "DZCONNECT_OPERATION_LEASE", "30s", "a replica's hold on a running operation, renewed while a step runs; when it dies, another replica takes the operation over after this (plus operation-janitor-interval)", false, dur(func(c *Config) *time.Duration { return &c.OperationLease })},
	{"operation-janitor-interval", "DZCONNECT_OPERATION_JANITOR_INTERVAL", "10s", "how often the leader looks for operations whose replica died (expired lease) and hands them to another", false, dur(func(c *Config) *time.Duration { return &c.OperationJanitor })},
	{"provision-rbac-window", "DZCONNECT_PROVISION_RBAC_WINDOW", "5m", "how long the Sentinel provisioning step keeps looking after Azure refuses the provisioner's role assignment (a grant can take minutes to apply); the remedy shows meanwhile", false, dur(func(c *Config) *time.Duration { return &c.ProvisionRBACWindow })},
	{"webhook-timeout", "DZCONNECT_WEBHOOK_TIMEOUT", "10s", "deadline of one webhook delivery request", false, dur(func(c *Config) *time.Duration { return &c.WebhookTimeout })},
	{"renewal-interval", "DZCONNECT_RENEWAL_INTERVAL", "1h", "how often the leader's renewal job looks for credentials of provisioned integrations to renew (and expiry dates to read from Entra)", false, dur(func(c *Config) *time.Duration { return &c.RenewalInterval })},
	{"renewal-jitter", "DZCONNECT_RENEWAL_JITTER", "24h", "automatic renewals are spread over this window (per credential, at most a quarter of the organization's threshold), so credentials made together are not rotated together", false, dur(func(c *Config) *time.Duration { return &c.RenewalJitter })},
	{"renewal-per-tenant", "DZCONNECT_RENEWAL_PER_TENANT", "2", "rotations running at once per customer tenant that automatic renewal may have started", false, intRange(func(c *Config) *int { return &c.RenewalPerTenant }, 1, 100)},
	{"expiry-read-interval", "DZCONNECT_EXPIRY_READ_INTERVAL", "24h", "the renewal job reads each provisioned credential's expiry date from Entra about this often", false, dur(func(c *Config) *time.Duration { return &c.ExpiryReadInterval })},
	{"test-clock-file", "DZCONNECT_TEST_CLOCK_FILE", "", "tests only: a file holding a duration (e.g. 840h) added to the clock of automatic renewal; empty (every deployment): the system clock", false, str(func(c *Config) *string { return &c.TestClockFile })},
}

// Load parses args (flags) over the environment over defaults, then
// validates. Every problem is reported, one per line.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	var c Config
	values := map[string]*string{}
	for _, o := range Reference {
		v := o.Default
		if e := getenv(o.Env); e != "" {
			v = e
		}
		val := &textValue{isBool: o.Default == "true" || o.Default == "false"}
		if o.Secret {
			// The flag package keeps the value at registration as the
			// default it prints in usage (-h, parse errors): register a
			// secret empty, then give it its value, so that an admin key,
			// a Vault token or a database password from the environment
			// never reaches usage text or the logs that capture it.
			fs.Var(val, o.Flag, o.Usage+" (env "+o.Env+"; secret: never shown)")
		} else {
			val.s = v
			fs.Var(val, o.Flag, o.Usage+" (env "+o.Env+")")
		}
		val.s = v
		values[o.Flag] = &val.s
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	for _, o := range Reference {
		if err := o.set(&c, *values[o.Flag]); err != nil {
			errs = append(errs, fmt.Errorf("--%s (%s): %w", o.Flag, o.Env, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.validate()...)
	}
	// The Vault client reads VAULT_SKIP_VERIFY itself: certificate checks
	// off would hand every client secret to whoever sits on the path.
	if skip, _ := strconv.ParseBool(getenv("VAULT_SKIP_VERIFY")); skip && !c.VaultInsecure {
		errs = append(errs, errors.New("VAULT_SKIP_VERIFY is set: Vault's certificate must be verified (trust its CA with --vault-ca-cert); only --vault-allow-insecure (development) permits it"))
	}
	return c, errors.Join(errs...)
}

// FromEnv loads with no flags (migrate and tools).
func FromEnv() (Config, error) {
	return Load(flag.NewFlagSet("env", flag.ContinueOnError), nil, os.Getenv)
}

func (c Config) validate() []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: "+format, append([]any{flag}, args...)...))
	}
	listeners := map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr}
	if c.InternalAddr != "off" {
		listeners["internal-addr"] = c.InternalAddr
	}
	for flag, addr := range listeners {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(flag, "must be host:port")
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls-cert-file", "set both tls-cert-file and tls-key-file, or neither")
	}
	if c.TLSClientCA != "" && c.TLSCertFile == "" {
		bad("tls-client-ca", "mutual TLS needs the server's own certificate: set tls-cert-file and tls-key-file")
	}
	if c.TLSCertFile == "" && !c.AllowPlaintext {
		// API keys travel in every request: without TLS, only this host
		// may connect, unless TLS is terminated in front (said explicitly).
		for _, flag := range []string{"grpc-addr", "http-addr", "internal-addr"} {
			addr, ok := listeners[flag]
			if !ok {
				continue
			}
			if host, _, err := net.SplitHostPort(addr); err == nil && !loopback(host) {
				bad(flag, "%s is not a loopback address and no TLS is configured: set tls-cert-file and tls-key-file, or allow-plaintext when TLS is terminated in front of dzconnect", host)
			}
		}
	}
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("oidc-issuer", "must be an https URL")
		}
		if c.OIDCAudience == "" {
			bad("oidc-audience", "required with oidc-issuer")
		}
		if c.OIDCOrgClaim == "" || c.OIDCRoleClaim == "" {
			bad("oidc-org-claim", "oidc-org-claim and oidc-role-claim must name claims")
		}
	} else if c.OIDCAudience != "" || c.OIDCCAFile != "" {
		bad("oidc-issuer", "required with oidc-audience and oidc-ca-file")
	}
	if c.DatabaseURL == "" {
		bad("database-url", "required")
	} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("database-url", "must be a postgres:// URL")
	}
	if u, err := url.Parse(c.VaultAddr); c.VaultAddr == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("vault-addr", "required: an http(s) URL")
	} else if u.Scheme == "http" && !loopback(u.Hostname()) && !c.VaultInsecure {
		bad("vault-addr", "%s is reached over plain http: use https (client secrets travel to Vault), or vault-allow-insecure in development", u.Host)
	}
	switch {
	case c.VaultToken == "" && c.VaultRoleID == "":
		bad("vault-token", "set a Vault token, or an AppRole (vault-role-id and vault-secret-id)")
	case c.VaultToken != "" && c.VaultRoleID != "":
		bad("vault-token", "set a Vault token or an AppRole, not both")
	case c.VaultRoleID != "" && c.VaultSecretID == "":
		bad("vault-secret-id", "required with vault-role-id")
	}
	if strings.Trim(c.VaultMount, "/") == "" {
		bad("vault-mount", "required")
	}
	if c.AdminKey != "" && (!strings.HasPrefix(c.AdminKey, "dzk_") || len(c.AdminKey) < 36) {
		bad("admin-key", "must be dzk_ followed by at least 32 characters (try: dzconnect gen-admin-key)")
	}
	errs = append(errs, c.validateTracing()...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "must be debug, info, warn or error")
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("log-format", "must be json or text")
	}
	for flag, d := range map[string]time.Duration{"shutdown-timeout": c.ShutdownTimeout, "janitor-interval": c.JanitorInterval,
		"pending-ttl": c.PendingTTL, "expiry-warning": c.ExpiryWarning, "settle-window": c.SettleWindow, "secret-verify-wait": c.SecretVerifyWait, "consent-confirm-wait": c.ConsentConfirmWait,
		"sweep-interval": c.SweepInterval, "check-timeout": c.CheckTimeout, "webhook-timeout": c.WebhookTimeout,
		"check-batch-slice": c.CheckBatchSlice, "vault-timeout": c.VaultTimeout, "database-timeout": c.DatabaseTimeout, "microsoft-timeout": c.MicrosoftTimeout, "renewal-interval": c.RenewalInterval, "expiry-read-interval": c.ExpiryReadInterval} {
		if d <= 0 {
			bad(flag, "must be positive")
		}
	}
	for flag, d := range map[string]time.Duration{"retention-checks": c.RetainChecks, "retention-audit": c.RetainAudit,
		"retention-request-ids": c.RetainRequestIDs, "retention-deliveries": c.RetainDeliveries} {
		if d < 0 || (d > 0 && d < 24*time.Hour) {
			bad(flag, "must be 0 (keep) or at least 24h")
		}
	}
	if c.RateLimitHold < 0 || c.RateLimitHold > 10*time.Second {
		bad("rate-limit-hold", "must be between 0 (off) and 10s")
	}
	if c.APIKeyCacheTTL < 0 {
		bad("api-key-cache-ttl", "must not be negative (0 turns the cache off)")
	}
	if c.RenewalJitter < 0 {
		bad("renewal-jitter", "must not be negative")
	}
	if c.SweepJitter < 0 || c.SweepJitter > c.SweepInterval {
		bad("sweep-jitter", "must be between 0 and sweep-interval")
	}
	if c.JobRescueAfter <= c.CheckBatchSlice+c.CheckTimeout+15*time.Second {
		bad("job-rescue-after", "must exceed check-batch-slice + check-timeout by more than 15s, or running check batches would be rescued")
	}
	if c.PendingTTL < time.Minute {
		bad("pending-ttl", "must be at least 1m, longer than any create takes")
	}
	return errs
}

// validateTracing checks the OTLP exporter's settings: a host:port or an
// http(s) URL; plaintext (otlp-insecure, or an http:// URL) only to a
// loopback collector unless allow-plaintext says the network is trusted
// (spans carry organization and integration IDs, and Microsoft request IDs).
func (c Config) validateTracing() []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: "+format, append([]any{flag}, args...)...))
	}
	if c.OTLPProtocol != "grpc" && c.OTLPProtocol != "http" {
		bad("otlp-protocol", "must be grpc or http")
	}
	if c.OTLPEndpoint == "" {
		return errs
	}
	var host string
	plaintext := c.OTLPInsecure
	if strings.Contains(c.OTLPEndpoint, "://") {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("otlp-endpoint", "must be host:port or an http(s) URL")
			return errs
		}
		if u.Scheme == "https" && c.OTLPInsecure {
			bad("otlp-insecure", "contradicts the https otlp-endpoint")
		}
		host, plaintext = u.Hostname(), plaintext || u.Scheme == "http"
	} else {
		h, _, err := net.SplitHostPort(c.OTLPEndpoint)
		if err != nil || h == "" {
			bad("otlp-endpoint", "must be host:port or an http(s) URL")
			return errs
		}
		host = h
	}
	if plaintext && !loopback(host) && !c.AllowPlaintext {
		bad("otlp-insecure", "%s is not a loopback address: export traces over TLS, or set allow-plaintext when the network to the collector is trusted (e.g. a service mesh)", host)
	}
	return errs
}

// loopback reports whether host (of a listen address) accepts only local
// connections: a loopback IP or localhost. An empty host listens on every
// interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Markdown renders the reference table for docs/configuration.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\nGenerated by `make generate` from internal/config (`dzconnect config-reference`); do not edit.\n" +
		"Every flag of `dzconnect serve` and `dzconnect migrate` has an environment variable; a flag wins over its variable.\n\n")
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, o := range Reference {
		def := o.Default
		if def == "" {
			def = "(none)"
		}
		usage := o.Usage
		if o.Secret {
			usage += "; secret: never logged"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s |\n", o.Flag, o.Env, def, usage)
	}
	return b.String()
}
