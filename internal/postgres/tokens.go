package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/token"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ token.Store = (*DB)(nil)

func consumerFrom(r query.CredentialConsumer) token.Consumer {
	return token.Consumer{Org: r.OrganizationID, Integration: r.IntegrationID, Name: r.Consumer, Credential: r.CredentialID,
		AcknowledgeTime: r.AcknowledgeTime, CreateTime: r.CreateTime}
}

// AddTokenIssuances implements token.Store.
// LoadTokenTarget implements token.Store: the integration's fields a
// cached token needs (no Sentinel, timestamps or tenant row), with only
// its active credential's ID, type and version.
func (db *DB) LoadTokenTarget(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error) {
	r, err := queries.GetTokenTarget(ctx, q(tx), query.GetTokenTargetParams{OrganizationID: org, ID: id})
	if err != nil {
		return integration.Integration{}, translate(err, "integration "+id.String())
	}
	in := integration.Integration{Org: org, ID: id, Tenant: r.TenantID, Kind: integration.Kind(r.Kind),
		Mode: integration.Mode(r.ManagementMode), State: integration.State(r.State), ClientID: r.ClientID,
		Features: make([]integration.Feature, 0, len(r.Features))}
	for _, f := range r.Features {
		in.Features = append(in.Features, integration.Feature(f))
	}
	if r.CredentialID.Valid {
		in.Credentials = []integration.Credential{{Org: org, Integration: id, ID: r.CredentialID.UUID,
			Type: integration.CredentialType(deref(r.CredentialType)), SecretVersion: derefInt(r.CredentialSecretVersion),
			State: integration.CredentialActive}}
	}
	return in, nil
}

func (db *DB) AddTokenIssuances(ctx context.Context, tx uow.Tx, c token.IssuanceCount) (bool, error) {
	inserted, err := queries.AddTokenIssuances(ctx, q(tx), query.AddTokenIssuancesParams{
		OrganizationID: c.Org, ApiKeyID: c.Key, Subject: c.Subject, IntegrationID: c.Integration, Api: string(c.API), WindowStart: c.Window,
		Issued: c.Issued, Fetched: c.Fetched,
	})
	return inserted, translate(err, "organization "+c.Org.String())
}

// ListTokenIssuances implements token.Store.
func (db *DB) ListTokenIssuances(ctx context.Context, tx uow.Tx, org uuid.UUID, since time.Time) ([]token.IssuanceCount, error) {
	rows, err := queries.ListTokenIssuances(ctx, q(tx), query.ListTokenIssuancesParams{OrganizationID: org, Since: since})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]token.IssuanceCount, len(rows))
	for i, r := range rows {
		out[i] = token.IssuanceCount{Org: r.OrganizationID, Key: r.ApiKeyID, Subject: r.Subject, Integration: r.IntegrationID, API: token.API(r.Api),
			Window: r.WindowStart, Issued: r.Issued, Fetched: r.Fetched}
	}
	return out, nil
}

// UpsertCredentialConsumer implements token.Store.
func (db *DB) UpsertCredentialConsumer(ctx context.Context, tx uow.Tx, c token.Consumer) (token.Consumer, error) {
	r, err := queries.UpsertCredentialConsumer(ctx, q(tx), query.UpsertCredentialConsumerParams{
		OrganizationID: c.Org, IntegrationID: c.Integration, Consumer: c.Name, CredentialID: c.Credential, AcknowledgeTime: c.AcknowledgeTime,
	})
	if err != nil {
		return token.Consumer{}, translate(err, "integration "+c.Integration.String())
	}
	return consumerFrom(r), nil
}

// ListCredentialConsumers implements token.Store.
func (db *DB) ListCredentialConsumers(ctx context.Context, tx uow.Tx, org, in uuid.UUID) ([]token.Consumer, error) {
	rows, err := queries.ListCredentialConsumers(ctx, q(tx), query.ListCredentialConsumersParams{OrganizationID: org, IntegrationID: in})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]token.Consumer, len(rows))
	for i, r := range rows {
		out[i] = consumerFrom(r)
	}
	return out, nil
}

// LockLiveCredentials implements token.Store.
func (db *DB) LockLiveCredentials(ctx context.Context, tx uow.Tx, org, in uuid.UUID) ([]integration.Credential, error) {
	rows, err := queries.LockIntegrationCredentials(ctx, q(tx), query.LockIntegrationCredentialsParams{OrganizationID: org, IntegrationID: in})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]integration.Credential, len(rows))
	for i, r := range rows {
		out[i] = credentialFrom(r)
	}
	return out, nil
}

// EndCredentialOverlap implements token.Store.
func (db *DB) EndCredentialOverlap(ctx context.Context, tx uow.Tx, org, cred uuid.UUID, at time.Time) error {
	_, err := queries.EndCredentialOverlap(ctx, q(tx), query.EndCredentialOverlapParams{At: at, OrganizationID: org, ID: cred})
	return translate(err, "retiring credential "+cred.String())
}

// ListStaleConsumers implements token.Store (across organizations: the
// leader's periodic job).
func (db *DB) ListStaleConsumers(ctx context.Context, tx uow.Tx, now time.Time, margin time.Duration, limit int) ([]token.StaleConsumer, error) {
	rows, err := queries.ListStaleConsumers(ctx, q(tx), query.ListStaleConsumersParams{Now: now, MarginSeconds: margin.Seconds(), Lim: int32(limit)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]token.StaleConsumer, len(rows))
	for i, r := range rows {
		out[i] = token.StaleConsumer{Org: r.OrganizationID, Integration: r.IntegrationID, Tenant: r.TenantID, Kind: integration.Kind(r.Kind),
			Consumer: r.Consumer, Credential: r.CredentialID, Retiring: r.RetiringID, OverlapEnd: r.OverlapEndTime}
	}
	return out, nil
}

// MarkConsumerAnnounced implements token.Store.
func (db *DB) MarkConsumerAnnounced(ctx context.Context, tx uow.Tx, org, in uuid.UUID, consumer string, retiring uuid.UUID) (bool, error) {
	n, err := queries.MarkConsumerAnnounced(ctx, q(tx), query.MarkConsumerAnnouncedParams{
		RetiringID: uuid.NullUUID{UUID: retiring, Valid: true}, OrganizationID: org, IntegrationID: in, Consumer: consumer,
	})
	return n > 0, translate(err, "")
}
