package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ integration.Store = (*DB)(nil)

// integrationFrom converts a row (without its credentials).
func integrationFrom(r query.Integration) integration.Integration {
	i := integration.Integration{
		Org: r.OrganizationID, Tenant: r.TenantID, ID: r.ID, Kind: integration.Kind(r.Kind), DisplayName: r.DisplayName,
		Mode: integration.Mode(r.ManagementMode), ClientID: r.ClientID,
		AppObjectID: r.ApplicationObjectID, ServicePrincipal: r.ServicePrincipalObjectID,
		State: integration.State(r.State), LastCheckTime: r.LastCheckTime, StateChangeTime: r.StateChangeTime,
		Pending: r.Pending, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime, Version: r.Version,
	}
	// Never nil: no features is the base integration (catalog.For reads
	// nil as "every feature").
	i.Features = make([]integration.Feature, 0, len(r.Features))
	for _, f := range r.Features {
		i.Features = append(i.Features, integration.Feature(f))
	}
	if r.SentinelSubscriptionID.Valid {
		i.Sentinel = &integration.Sentinel{SubscriptionID: r.SentinelSubscriptionID.UUID, WorkspaceID: r.SentinelWorkspaceID.UUID,
			ResourceGroup: deref(r.SentinelResourceGroup), WorkspaceName: deref(r.SentinelWorkspaceName)}
	}
	return i
}

// credentialFrom converts a row.
func credentialFrom(r query.Credential) integration.Credential {
	return integration.Credential{
		Org: r.OrganizationID, Integration: r.IntegrationID, ID: r.ID, Type: integration.CredentialType(r.Type),
		KeyID: r.KeyID, Hint: deref(r.Hint), StartTime: r.StartTime, EndTime: r.EndTime,
		SecretPath: r.SecretPath, SecretVersion: r.SecretVersion,
		Source: integration.CredentialSource(r.Source), State: integration.CredentialState(r.State),
		ExpiryWarnTime: r.ExpiryWarnedTime, OverlapEnd: r.OverlapEndTime, RenewalNotBefore: r.RenewalNotBefore, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func featureStrings(fs []integration.Feature) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, string(f))
	}
	return out
}

// sentinelColumns flattens the optional Sentinel settings.
func sentinelColumns(s *integration.Sentinel) (sub uuid.NullUUID, rg, name *string, ws uuid.NullUUID) {
	if s == nil {
		return uuid.NullUUID{}, nil, nil, uuid.NullUUID{}
	}
	return uuid.NullUUID{UUID: s.SubscriptionID, Valid: true}, &s.ResourceGroup, &s.WorkspaceName,
		uuid.NullUUID{UUID: s.WorkspaceID, Valid: true}
}

// withCredentials loads the credentials of ins (one organization) in one
// query and attaches them.
func withCredentials(ctx context.Context, tx uow.Tx, org uuid.UUID, ins []integration.Integration) ([]integration.Integration, error) {
	if len(ins) == 0 {
		return ins, nil
	}
	ids := make([]uuid.UUID, len(ins))
	at := make(map[uuid.UUID]int, len(ins))
	for k, in := range ins {
		ids[k], at[in.ID] = in.ID, k
	}
	rows, err := queries.ListCredentials(ctx, q(tx), query.ListCredentialsParams{OrganizationID: org, IntegrationIds: ids})
	if err != nil {
		return nil, translate(err, "")
	}
	for _, r := range rows {
		k := at[r.IntegrationID]
		ins[k].Credentials = append(ins[k].Credentials, credentialFrom(r))
	}
	return ins, nil
}

func withCredentialsOne(ctx context.Context, tx uow.Tx, r query.Integration, err error, what string) (integration.Integration, error) {
	if err != nil {
		return integration.Integration{}, translate(err, what)
	}
	out, err := withCredentials(ctx, tx, r.OrganizationID, []integration.Integration{integrationFrom(r)})
	if err != nil {
		return integration.Integration{}, err
	}
	return out[0], nil
}

func integrationWhat(org, id uuid.UUID) string { return "integration " + id.String() }

// InsertIntegration implements integration.Store.
func (db *DB) InsertIntegration(ctx context.Context, tx uow.Tx, in integration.Integration) (integration.Integration, error) {
	sub, rg, name, ws := sentinelColumns(in.Sentinel)
	r, err := queries.InsertIntegration(ctx, q(tx), query.InsertIntegrationParams{
		OrganizationID: in.Org, TenantID: in.Tenant, ID: in.ID, Kind: string(in.Kind), DisplayName: in.DisplayName,
		Features: featureStrings(in.Features), ManagementMode: string(in.Mode), ClientID: in.ClientID,
		ApplicationObjectID: in.AppObjectID, ServicePrincipalObjectID: in.ServicePrincipal,
		SentinelSubscriptionID: sub, SentinelResourceGroup: rg, SentinelWorkspaceName: name, SentinelWorkspaceID: ws,
		State: string(in.State),
	})
	if err != nil {
		return integration.Integration{}, translate(err, "")
	}
	return integrationFrom(r), nil
}

// GetIntegration implements integration.Store. Pending rows are invisible.
func (db *DB) GetIntegration(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error) {
	r, err := queries.GetIntegration(ctx, q(tx), query.GetIntegrationParams{OrganizationID: org, ID: id})
	return withCredentialsOne(ctx, tx, r, err, integrationWhat(org, id))
}

// GetIntegrationIncludingPending implements integration.Store.
func (db *DB) GetIntegrationIncludingPending(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error) {
	r, err := queries.GetIntegrationIncludingPending(ctx, q(tx), query.GetIntegrationIncludingPendingParams{OrganizationID: org, ID: id})
	return withCredentialsOne(ctx, tx, r, err, integrationWhat(org, id))
}

// GetIntegrationForUpdate implements integration.Store.
func (db *DB) GetIntegrationForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error) {
	r, err := queries.GetIntegrationForUpdate(ctx, q(tx), query.GetIntegrationForUpdateParams{OrganizationID: org, ID: id})
	return withCredentialsOne(ctx, tx, r, err, integrationWhat(org, id))
}

// ListIntegrations implements integration.Store: one query for the page,
// one for its credentials.
func (db *DB) ListIntegrations(ctx context.Context, tx uow.Tx, org uuid.UUID, f integration.Filter, p page.Request) ([]integration.Integration, error) {
	var expireBefore *time.Time
	if !f.ExpireBefore.IsZero() {
		expireBefore = &f.ExpireBefore
	}
	rows, err := queries.ListIntegrations(ctx, q(tx), query.ListIntegrationsParams{
		OrganizationID: org, After: p.After, TenantID: uuid.NullUUID{UUID: f.Tenant, Valid: f.Tenant != uuid.Nil},
		Kind: string(f.Kind), State: string(f.State), ExpireBefore: expireBefore, Lim: int32(p.Size + 1),
	})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]integration.Integration, 0, len(rows))
	for _, r := range rows {
		out = append(out, integrationFrom(r))
	}
	return withCredentials(ctx, tx, org, out)
}

// UpdateIntegration implements integration.Store.
func (db *DB) UpdateIntegration(ctx context.Context, tx uow.Tx, in integration.Integration) (integration.Integration, error) {
	sub, rg, name, ws := sentinelColumns(in.Sentinel)
	r, err := queries.UpdateIntegration(ctx, q(tx), query.UpdateIntegrationParams{
		OrganizationID: in.Org, ID: in.ID, DisplayName: in.DisplayName, Features: featureStrings(in.Features), ClientID: in.ClientID,
		ApplicationObjectID: in.AppObjectID, ServicePrincipalObjectID: in.ServicePrincipal,
		SentinelSubscriptionID: sub, SentinelResourceGroup: rg, SentinelWorkspaceName: name, SentinelWorkspaceID: ws,
		State: string(in.State),
	})
	if err != nil {
		return integration.Integration{}, translate(err, integrationWhat(in.Org, in.ID))
	}
	return integrationFrom(r), nil
}

// SetProvisionedObjects implements integration.Store.
func (db *DB) SetProvisionedObjects(ctx context.Context, tx uow.Tx, org, id uuid.UUID, o integration.ProvisionedObjects) error {
	sub, rg, name, ws := sentinelColumns(o.Sentinel)
	n, err := queries.SetProvisionedObjects(ctx, q(tx), query.SetProvisionedObjectsParams{
		OrganizationID: org, ID: id, ClientID: o.ClientID, ApplicationObjectID: o.AppObjectID,
		ServicePrincipalObjectID: o.ServicePrincipal, SentinelSubscriptionID: sub, SentinelResourceGroup: rg,
		SentinelWorkspaceName: name, SentinelWorkspaceID: ws,
	})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, integrationWhat(org, id))
}

// MakeIntegrationVisible implements integration.Store.
func (db *DB) MakeIntegrationVisible(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error) {
	r, err := queries.MakeIntegrationVisible(ctx, q(tx), query.MakeIntegrationVisibleParams{OrganizationID: org, ID: id})
	if err != nil {
		return integration.Integration{}, translate(err, "pending integration "+id.String())
	}
	return integrationFrom(r), nil
}

// DeleteIntegration implements integration.Store.
func (db *DB) DeleteIntegration(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	n, err := queries.DeleteIntegration(ctx, q(tx), query.DeleteIntegrationParams{OrganizationID: org, ID: id})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, integrationWhat(org, id))
}

// InsertCredential implements integration.Store.
func (db *DB) InsertCredential(ctx context.Context, tx uow.Tx, c integration.Credential) (integration.Credential, error) {
	r, err := queries.InsertCredential(ctx, q(tx), query.InsertCredentialParams{
		OrganizationID: c.Org, IntegrationID: c.Integration, ID: c.ID, Type: string(c.Type), KeyID: c.KeyID,
		Hint: nullString(c.Hint), StartTime: c.StartTime, EndTime: c.EndTime, SecretPath: c.SecretPath, Source: string(c.Source),
	})
	if err != nil {
		return integration.Credential{}, translate(err, "")
	}
	return credentialFrom(r), nil
}

// ActivateCredential implements integration.Store.
func (db *DB) ActivateCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID, secretVersion int64) (integration.Credential, error) {
	r, err := queries.ActivateCredential(ctx, q(tx), query.ActivateCredentialParams{OrganizationID: org, ID: id, SecretVersion: secretVersion})
	if err != nil {
		return integration.Credential{}, translate(err, "pending credential "+id.String())
	}
	return credentialFrom(r), nil
}

// SetCredentialState implements integration.Store.
func (db *DB) SetCredentialState(ctx context.Context, tx uow.Tx, org, id uuid.UUID, state integration.CredentialState) (integration.Credential, error) {
	r, err := queries.SetCredentialState(ctx, q(tx), query.SetCredentialStateParams{OrganizationID: org, ID: id, State: string(state)})
	if err != nil {
		return integration.Credential{}, translate(err, "credential "+id.String())
	}
	return credentialFrom(r), nil
}

// UpdateCredential implements integration.Store.
func (db *DB) UpdateCredential(ctx context.Context, tx uow.Tx, c integration.Credential) (integration.Credential, error) {
	r, err := queries.UpdateCredentialMetadata(ctx, q(tx), query.UpdateCredentialMetadataParams{
		OrganizationID: c.Org, ID: c.ID, KeyID: c.KeyID, Hint: nullString(c.Hint), StartTime: c.StartTime, EndTime: c.EndTime,
		ExpiryWarnedTime: c.ExpiryWarnTime,
	})
	if err != nil {
		return integration.Credential{}, translate(err, "credential "+c.ID.String())
	}
	return credentialFrom(r), nil
}

// DeleteCredential implements integration.Store.
func (db *DB) DeleteCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID) error {
	_, err := queries.DeleteCredential(ctx, q(tx), query.DeleteCredentialParams{OrganizationID: org, ID: id})
	return translate(err, "")
}

// ListStalePendingCredentials implements integration.Store (every
// organization: background work, not an API query).
func (db *DB) ListStalePendingCredentials(ctx context.Context, tx uow.Tx, cutoff time.Time) ([]integration.Credential, error) {
	rows, err := queries.ListStalePendingCredentials(ctx, q(tx), cutoff)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]integration.Credential, 0, len(rows))
	for _, r := range rows {
		out = append(out, credentialFrom(r))
	}
	return out, nil
}

// DeletePendingIntegrations implements integration.Store (every
// organization: background work, not an API query).
func (db *DB) DeletePendingIntegrations(ctx context.Context, tx uow.Tx, cutoff time.Time) ([]integration.Integration, error) {
	rows, err := queries.DeletePendingIntegrations(ctx, q(tx), cutoff)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]integration.Integration, 0, len(rows))
	for _, r := range rows {
		out = append(out, integration.Integration{Org: r.OrganizationID, Tenant: r.TenantID, ID: r.ID, Pending: true})
	}
	return out, nil
}

// DeleteRequestKeys implements integration.Store.
func (db *DB) DeleteRequestKeys(ctx context.Context, tx uow.Tx, org uuid.UUID, resourceName string) error {
	return translate(queries.DeleteRequestKeysFor(ctx, q(tx), query.DeleteRequestKeysForParams{OrganizationID: org, ResourceName: resourceName}), "")
}
