package token

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// API is a Microsoft API a token is for (verify's names: graph, defender,
// loganalytics, arm, exchange, cloudapps).
type API = verify.API

// Token is a Microsoft access token. Its value is never logged: String,
// GoString and LogValue redact it.
type Token struct {
	Value     string
	ExpiresOn time.Time
	Scope     string // the scope it was requested for, e.g. https://graph.microsoft.com/.default
}

func (t Token) String() string {
	return "token(redacted, expires " + t.ExpiresOn.UTC().Format(time.RFC3339) + ")"
}
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires", t.ExpiresOn), slog.String("scope", t.Scope))
}

// Issued is what IssueAccessToken returns.
type Issued struct {
	Token
	API        API
	Credential uuid.UUID // uuid.Nil for shared mode
	Cached     bool      // served from the cache
}

// Source gets access tokens with one credential (one Microsoft session).
type Source interface {
	// AccessToken requests a token for api. Errors are *mserr.Error.
	AccessToken(ctx context.Context, api API) (Token, error)
}

// Sessions opens token sources the way checks open their sessions.
type Sessions interface {
	// Open returns a source for in's active credential (or, in shared
	// mode, the shared application's) in tenant t.
	Open(ctx context.Context, t tenant.Tenant, in integration.Integration) (Source, error)
	// SharedFingerprint identifies the secret a shared-mode integration
	// uses (its change time); ok is false when there is none.
	SharedFingerprint(ctx context.Context, in integration.Integration) (string, bool)
}

// Consumer is a platform registered for an integration by its first
// acknowledgement, and the credential it last acknowledged.
type Consumer struct {
	Org, Integration uuid.UUID
	Name             string
	Credential       uuid.UUID
	AcknowledgeTime  time.Time
	CreateTime       time.Time
}

// IssuanceCount is one (organization, caller, integration, API, hour)
// counter. The caller is an API key (Key), a workload identity (Subject,
// with the nil Key), or the service admin (neither).
type IssuanceCount struct {
	Org, Key, Integration uuid.UUID
	Subject               string // oidc:<issuer>#<sub> or cert:<identity> (auth.Principal.Subject)
	API                   API
	Window                time.Time
	Issued, Fetched       int64
}

// StaleConsumer is a consumer not on the active credential while a
// rotated-out credential nears its removal.
type StaleConsumer struct {
	Org, Integration, Tenant uuid.UUID
	Kind                     integration.Kind
	Consumer                 string
	Credential               uuid.UUID // the one it last acknowledged
	Retiring                 uuid.UUID
	OverlapEnd               time.Time
}

// Store reads and writes what this package needs. Every method runs in the
// caller's unit of work; none opens a transaction.
type Store interface {
	// LoadTokenTarget reads what a cached token needs of a visible
	// integration: kind, features, mode, state, client ID, tenant ID and
	// its active credential's ID, type and version (NotFound otherwise).
	LoadTokenTarget(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error)
	// LoadCheckTarget reads a visible integration with only its active
	// credential, and its tenant (NotFound otherwise).
	LoadCheckTarget(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, tenant.Tenant, error)
	// AddTokenIssuances adds c's counts; inserted is true when this made
	// the window's row.
	AddTokenIssuances(ctx context.Context, tx uow.Tx, c IssuanceCount) (inserted bool, err error)
	// ListTokenIssuances lists an organization's counts since a time.
	ListTokenIssuances(ctx context.Context, tx uow.Tx, org uuid.UUID, since time.Time) ([]IssuanceCount, error)
	// UpsertCredentialConsumer registers or moves a consumer.
	UpsertCredentialConsumer(ctx context.Context, tx uow.Tx, c Consumer) (Consumer, error)
	// ListCredentialConsumers lists an integration's consumers.
	ListCredentialConsumers(ctx context.Context, tx uow.Tx, org, in uuid.UUID) ([]Consumer, error)
	// LockLiveCredentials reads and row-locks an integration's active and
	// retiring credentials until tx ends.
	LockLiveCredentials(ctx context.Context, tx uow.Tx, org, in uuid.UUID) ([]integration.Credential, error)
	// EndCredentialOverlap brings a retiring credential's overlap end
	// forward to at (never later).
	EndCredentialOverlap(ctx context.Context, tx uow.Tx, org, cred uuid.UUID, at time.Time) error
	// ListStaleConsumers lists consumers to announce (across organizations).
	ListStaleConsumers(ctx context.Context, tx uow.Tx, now time.Time, margin time.Duration, limit int) ([]StaleConsumer, error)
	// MarkConsumerAnnounced records the announcement; false when another
	// replica already made it.
	MarkConsumerAnnounced(ctx context.Context, tx uow.Tx, org, in uuid.UUID, consumer string, retiring uuid.UUID) (bool, error)
}

// Retirer removes retiring credentials (internal/provision).
type Retirer interface {
	// QueueRetireNow queues the removal of a retiring credential whose
	// overlap end was just brought forward, in tx.
	QueueRetireNow(ctx context.Context, tx uow.Tx, org, in, cred uuid.UUID) error
}

// fingerprint names the credential tokens come from: the active
// credential's ID and Vault version, or the shared application's secret.
func (s *Service) fingerprint(ctx context.Context, in integration.Integration) (string, uuid.UUID, bool) {
	if c, ok := in.Active(); ok {
		return fmt.Sprintf("%s|%s|%d", in.ClientID, c.ID, c.SecretVersion), c.ID, true
	}
	if in.Mode == integration.ModeShared {
		if fp, ok := s.sessions.SharedFingerprint(ctx, in); ok {
			return fmt.Sprintf("%s|shared|%s", in.ClientID, fp), uuid.Nil, true
		}
	}
	return "", uuid.Nil, false
}
