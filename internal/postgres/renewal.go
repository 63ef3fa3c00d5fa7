package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ provision.RenewalStore = (*DB)(nil)

// ListRenewalCandidates implements provision.RenewalStore.
func (db *DB) ListRenewalCandidates(ctx context.Context, tx uow.Tx, now, realNow, readBefore time.Time, limit int) ([]provision.RenewalCandidate, error) {
	rows, err := queries.ListRenewalCandidates(ctx, q(tx), query.ListRenewalCandidatesParams{Now: now, RealNow: realNow,
		ReadBefore: readBefore, Lim: int32(limit)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]provision.RenewalCandidate, 0, len(rows))
	for _, r := range rows {
		out = append(out, provision.RenewalCandidate{Org: r.OrganizationID, Tenant: r.TenantID, Integration: r.IntegrationID,
			Credential: r.CredentialID, EndTime: r.EndTime, ExpiryReadTime: r.ExpiryReadTime,
			Threshold: time.Duration(r.CredentialRenewalThresholdSeconds) * time.Second, WithinThreshold: r.WithinThreshold})
	}
	return out, nil
}

// CountUnfinishedRotations implements provision.RenewalStore.
func (db *DB) CountUnfinishedRotations(ctx context.Context, tx uow.Tx, org uuid.UUID, targetPrefix string) (int, error) {
	n, err := queries.CountUnfinishedTenantRotations(ctx, q(tx), query.CountUnfinishedTenantRotationsParams{
		OrganizationID: org, TargetPrefix: targetPrefix})
	return int(n), translate(err, "")
}

// SetCredentialExpiryRead implements provision.RenewalStore.
func (db *DB) SetCredentialExpiryRead(ctx context.Context, tx uow.Tx, org, id uuid.UUID, end *time.Time, readAt time.Time) (integration.Credential, error) {
	r, err := queries.SetCredentialExpiryRead(ctx, q(tx), query.SetCredentialExpiryReadParams{OrganizationID: org, ID: id,
		EndTime: end, ExpiryReadTime: &readAt})
	if err != nil {
		return integration.Credential{}, translate(err, "credential "+id.String())
	}
	return credentialFrom(r), nil
}

// SetCredentialRenewalNotBefore implements provision.RenewalStore.
func (db *DB) SetCredentialRenewalNotBefore(ctx context.Context, tx uow.Tx, org, id uuid.UUID, t time.Time) (integration.Credential, error) {
	r, err := queries.SetCredentialRenewalNotBefore(ctx, q(tx), query.SetCredentialRenewalNotBeforeParams{OrganizationID: org, ID: id,
		RenewalNotBefore: &t})
	if err != nil {
		return integration.Credential{}, translate(err, "credential "+id.String())
	}
	return credentialFrom(r), nil
}
