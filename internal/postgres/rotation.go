package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// InsertStoredPendingCredential inserts a rotation's new credential:
// pending (not yet verified) with its stored secret version.
func (db *DB) InsertStoredPendingCredential(ctx context.Context, tx uow.Tx, c integration.Credential) (integration.Credential, error) {
	r, err := queries.InsertStoredPendingCredential(ctx, q(tx), query.InsertStoredPendingCredentialParams{
		OrganizationID: c.Org, IntegrationID: c.Integration, ID: c.ID, Type: string(c.Type), KeyID: c.KeyID,
		Hint: nullString(c.Hint), StartTime: c.StartTime, EndTime: c.EndTime, SecretPath: c.SecretPath,
		SecretVersion: c.SecretVersion, Source: string(c.Source),
	})
	if err != nil {
		return integration.Credential{}, translate(err, "")
	}
	return credentialFrom(r), nil
}

// RetireCredential makes an active or pending credential retiring until
// overlapEnd.
func (db *DB) RetireCredential(ctx context.Context, tx uow.Tx, org, id uuid.UUID, overlapEnd time.Time) (integration.Credential, error) {
	r, err := queries.RetireCredential(ctx, q(tx), query.RetireCredentialParams{OrganizationID: org, ID: id, OverlapEndTime: &overlapEnd})
	if err != nil {
		return integration.Credential{}, translate(err, "active credential "+id.String())
	}
	return credentialFrom(r), nil
}

// GetCredentialForUpdate reads one credential and row-locks it until tx ends.
func (db *DB) GetCredentialForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Credential, error) {
	r, err := queries.GetCredentialForUpdate(ctx, q(tx), query.GetCredentialForUpdateParams{OrganizationID: org, ID: id})
	if err != nil {
		return integration.Credential{}, translate(err, "credential "+id.String())
	}
	return credentialFrom(r), nil
}

// CredentialOverlap reads the organization's rotation overlap.
func (db *DB) CredentialOverlap(ctx context.Context, tx uow.Tx, org uuid.UUID) (time.Duration, error) {
	n, err := queries.GetCredentialOverlap(ctx, q(tx), org)
	if err != nil {
		return 0, translate(err, "organizations/"+org.String())
	}
	return time.Duration(n) * time.Second, nil
}

// SetCredentialOverlap writes the organization's rotation overlap (whole
// seconds; the domain validates the range, the check constraint backs it).
func (db *DB) SetCredentialOverlap(ctx context.Context, tx uow.Tx, org uuid.UUID, d time.Duration) (time.Duration, error) {
	n, err := queries.SetCredentialOverlap(ctx, q(tx), query.SetCredentialOverlapParams{OrganizationID: org, CredentialOverlapSeconds: int64(d / time.Second)})
	if err != nil {
		return 0, translate(err, "organizations/"+org.String())
	}
	return time.Duration(n) * time.Second, nil
}
