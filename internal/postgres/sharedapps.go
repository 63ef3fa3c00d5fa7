package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ sharedapp.Store = (*DB)(nil)

// sharedAppName is the resource name errors use.
func sharedAppName(org uuid.UUID, kind integration.Kind) string {
	return resource.Org{Org: org}.String() + "/sharedApplications/" + string(kind)
}

func sharedAppFrom(r query.SharedApplication) sharedapp.App {
	a := sharedapp.App{Org: r.OrganizationID, Kind: integration.Kind(r.Kind), ClientID: r.ClientID, DisplayName: r.DisplayName,
		SecretPath: r.SecretPath, SecretVersion: r.SecretVersion, SecretEndTime: r.SecretEndTime,
		CreateTime: r.CreateTime, UpdateTime: r.UpdateTime, Version: r.Version, Features: []integration.Feature{}}
	for _, f := range r.Features {
		a.Features = append(a.Features, integration.Feature(f))
	}
	return a
}

// InsertSharedApp implements sharedapp.Store.
func (db *DB) InsertSharedApp(ctx context.Context, tx uow.Tx, a sharedapp.App) (sharedapp.App, error) {
	r, err := queries.InsertSharedApplication(ctx, q(tx), query.InsertSharedApplicationParams{
		OrganizationID: a.Org, Kind: string(a.Kind), ClientID: a.ClientID, DisplayName: a.DisplayName,
		Features: featureStrings(a.Features), SecretPath: a.SecretPath, SecretEndTime: a.SecretEndTime,
	})
	return sharedAppFrom(r), translate(err, sharedAppName(a.Org, a.Kind))
}

// GetSharedApp implements sharedapp.Store.
func (db *DB) GetSharedApp(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) (sharedapp.App, error) {
	r, err := queries.GetSharedApplication(ctx, q(tx), query.GetSharedApplicationParams{OrganizationID: org, Kind: string(kind)})
	return sharedAppFrom(r), translate(err, sharedAppName(org, kind))
}

// GetSharedAppForUpdate implements sharedapp.Store.
func (db *DB) GetSharedAppForUpdate(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) (sharedapp.App, error) {
	r, err := queries.GetSharedApplicationForUpdate(ctx, q(tx), query.GetSharedApplicationForUpdateParams{OrganizationID: org, Kind: string(kind)})
	return sharedAppFrom(r), translate(err, sharedAppName(org, kind))
}

// ListSharedApps implements sharedapp.Store.
func (db *DB) ListSharedApps(ctx context.Context, tx uow.Tx, org uuid.UUID) ([]sharedapp.App, error) {
	rows, err := queries.ListSharedApplications(ctx, q(tx), org)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]sharedapp.App, 0, len(rows))
	for _, r := range rows {
		out = append(out, sharedAppFrom(r))
	}
	return out, nil
}

// SetSharedAppSecret implements sharedapp.Store.
func (db *DB) SetSharedAppSecret(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind, version int64, end *time.Time) (sharedapp.App, error) {
	r, err := queries.SetSharedApplicationSecret(ctx, q(tx), query.SetSharedApplicationSecretParams{
		OrganizationID: org, Kind: string(kind), SecretVersion: version, SecretEndTime: end,
	})
	return sharedAppFrom(r), translate(err, sharedAppName(org, kind))
}

// DeleteSharedApp implements sharedapp.Store.
func (db *DB) DeleteSharedApp(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) error {
	n, err := queries.DeleteSharedApplication(ctx, q(tx), query.DeleteSharedApplicationParams{OrganizationID: org, Kind: string(kind)})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, sharedAppName(org, kind))
}

// CountSharedIntegrations implements sharedapp.Store.
func (db *DB) CountSharedIntegrations(ctx context.Context, tx uow.Tx, org uuid.UUID, kind integration.Kind) (int64, error) {
	n, err := queries.CountSharedIntegrations(ctx, q(tx), query.CountSharedIntegrationsParams{OrganizationID: org, Kind: string(kind)})
	return n, translate(err, "")
}

// InsertSharedIntegration implements sharedapp.Store.
func (db *DB) InsertSharedIntegration(ctx context.Context, tx uow.Tx, org, integrationID uuid.UUID, kind integration.Kind) error {
	return translate(queries.InsertSharedIntegration(ctx, q(tx), query.InsertSharedIntegrationParams{
		OrganizationID: org, IntegrationID: integrationID, Kind: string(kind),
	}), sharedAppName(org, kind))
}

// GetSharedIntegrationApp implements sharedapp.Store.
func (db *DB) GetSharedIntegrationApp(ctx context.Context, tx uow.Tx, org, integrationID uuid.UUID) (sharedapp.App, error) {
	r, err := queries.GetSharedIntegrationApplication(ctx, q(tx), query.GetSharedIntegrationApplicationParams{
		OrganizationID: org, IntegrationID: integrationID,
	})
	return sharedAppFrom(r), translate(err, "the integration's shared application")
}

// GetSharedConsent implements sharedapp.Store.
func (db *DB) GetSharedConsent(ctx context.Context, tx uow.Tx, org, tenantID uuid.UUID, kind integration.Kind) (sharedapp.Consent, error) {
	r, err := queries.GetSharedConsent(ctx, q(tx), query.GetSharedConsentParams{OrganizationID: org, TenantID: tenantID, Kind: string(kind)})
	if err != nil {
		return sharedapp.Consent{}, translate(err, resource.Tenant{Org: org, Tenant: tenantID}.String())
	}
	return sharedapp.Consent{Org: r.OrganizationID, Tenant: r.TenantID, Kind: integration.Kind(r.Kind), ClientID: r.ClientID, Time: r.ConsentTime}, nil
}

// ListSharedSecretPaths implements organization.Store: the Vault paths of
// the organization's shared applications' secrets.
func (db *DB) ListSharedSecretPaths(ctx context.Context, tx uow.Tx, org uuid.UUID) ([]string, error) {
	ps, err := queries.ListSharedSecretPaths(ctx, q(tx), org)
	return ps, translate(err, "")
}
