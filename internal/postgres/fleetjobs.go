package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

var _ jobs.Fleet = (*DB)(nil)

// ListDueTenants implements jobs.Fleet (all organizations: background work).
func (db *DB) ListDueTenants(ctx context.Context, tx uow.Tx, dueBefore time.Time, after jobs.TenantRef, limit int) ([]jobs.TenantRef, error) {
	rows, err := queries.ListDueTenants(ctx, q(tx), query.ListDueTenantsParams{
		DueBefore: &dueBefore, AfterOrg: after.Org, AfterTenant: after.Tenant, Lim: int32(limit),
	})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]jobs.TenantRef, 0, len(rows))
	for _, r := range rows {
		out = append(out, jobs.TenantRef{Org: r.OrganizationID, Tenant: r.TenantID, ThrottledUntil: r.ThrottledUntil})
	}
	return out, nil
}

// ListDueTargets implements jobs.Fleet: a page of targets, and the
// tenant's throttle, in one query.
func (db *DB) ListDueTargets(ctx context.Context, tx uow.Tx, t jobs.TenantRef, dueBefore time.Time, after uuid.UUID, limit int) ([]verify.Target, time.Time, error) {
	rows, err := queries.ListDueCheckTargets(ctx, q(tx), query.ListDueCheckTargetsParams{
		OrganizationID: t.Org, TenantID: t.Tenant, DueBefore: &dueBefore, After: after, Lim: int32(limit),
	})
	if err != nil {
		return nil, time.Time{}, translate(err, "")
	}
	var throttled time.Time
	if len(rows) > 0 && rows[0].ThrottledUntil.After(time.Unix(0, 0)) {
		throttled = rows[0].ThrottledUntil
	}
	out := make([]verify.Target, 0, len(rows))
	for _, r := range rows {
		tg, err := checkTargetFrom(query.GetCheckTargetRow{Integration: r.Integration, Tenant: r.Tenant,
			CredentialID: r.CredentialID, CredentialType: r.CredentialType, CredentialKeyID: r.CredentialKeyID,
			CredentialHint: r.CredentialHint, CredentialStartTime: r.CredentialStartTime, CredentialEndTime: r.CredentialEndTime,
			CredentialSecretPath: r.CredentialSecretPath, CredentialSecretVersion: r.CredentialSecretVersion,
			CredentialSource: r.CredentialSource, CredentialState: r.CredentialState,
			CredentialExpiryWarnedTime: r.CredentialExpiryWarnedTime, CredentialCreateTime: r.CredentialCreateTime,
			CredentialUpdateTime: r.CredentialUpdateTime})
		if err != nil {
			return nil, time.Time{}, err
		}
		rev := r.CatalogRevision
		tg.CatalogRevision = &rev
		out = append(out, tg)
	}
	return out, throttled, nil
}

// ThrottleTenant implements jobs.Fleet.
func (db *DB) ThrottleTenant(ctx context.Context, tx uow.Tx, t jobs.TenantRef, until time.Time) error {
	return translate(queries.SetTenantThrottle(ctx, q(tx), query.SetTenantThrottleParams{
		OrganizationID: t.Org, TenantID: t.Tenant, UntilTime: until,
	}), "")
}

// DeleteExpiredThrottles implements jobs.Fleet.
func (db *DB) DeleteExpiredThrottles(ctx context.Context, tx uow.Tx, before time.Time) (int, error) {
	n, err := queries.DeleteExpiredTenantThrottles(ctx, q(tx), before)
	return int(n), translate(err, "")
}

var _ jobs.Outbox = (*DB)(nil)

// ListSecretDestructions implements jobs.Outbox: leftovers of the former
// secret_destructions outbox.
func (db *DB) ListSecretDestructions(ctx context.Context, tx uow.Tx, limit int) ([]jobs.DestroySecretArgs, []int64, error) {
	rows, err := queries.ListSecretDestructions(ctx, q(tx), int32(limit))
	if err != nil {
		return nil, nil, translate(err, "")
	}
	args := make([]jobs.DestroySecretArgs, 0, len(rows))
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		args = append(args, jobs.DestroySecretArgs{Org: r.OrganizationID, Path: r.SecretPath})
		ids = append(ids, r.ID)
	}
	return args, ids, nil
}

// DeleteSecretDestructions implements jobs.Outbox.
func (db *DB) DeleteSecretDestructions(ctx context.Context, tx uow.Tx, ids []int64) error {
	return translate(queries.DeleteSecretDestructions(ctx, q(tx), ids), "")
}
