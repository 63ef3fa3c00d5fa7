-- Automatic credential renewal (docs/credentials.md "Automatic renewal").

-- name: ListRenewalCandidates :many
-- Background work for every organization: active credentials of
-- provisioned integrations that are due for renewal (less than the
-- organization's threshold left at @now, the renewal clock) or whose
-- expiry date was not read from Entra since @read_before; not those the
-- renewal left alone until later (renewal_not_before), not those with an
-- unfinished credential-changing operation on the integration, not those
-- of a tenant Microsoft throttled (until after @real_now). Due ones first,
-- then by organization and tenant.
select c.organization_id, i.tenant_id, c.integration_id, c.id as credential_id, c.end_time, c.expiry_read_time,
  o.credential_renewal_threshold_seconds,
  coalesce(c.end_time - o.credential_renewal_threshold_seconds * interval '1 second' < sqlc.arg(now)::timestamptz, false)::boolean as within_threshold
from credentials c
join integrations i on i.organization_id = c.organization_id and i.id = c.integration_id
join organizations o on o.id = c.organization_id
left join tenant_throttles th on th.organization_id = i.organization_id and th.tenant_id = i.tenant_id
where c.state = 'active' and i.management_mode = 'provisioned' and not i.pending
  and i.state not in ('provisioning', 'deprovisioning') and i.application_object_id is not null
  and (c.renewal_not_before is null or c.renewal_not_before <= sqlc.arg(now)::timestamptz)
  and (th.until_time is null or th.until_time <= @real_now::timestamptz)
  and (c.end_time - o.credential_renewal_threshold_seconds * interval '1 second' < sqlc.arg(now)::timestamptz
    or c.expiry_read_time is null or c.expiry_read_time < @read_before::timestamptz)
  and not exists (
    select 1 from operations op
    where op.organization_id = c.organization_id and op.kind in ('provision', 'deprovision', 'rotate')
      and op.state in ('pending', 'running')
      and op.target = 'organizations/' || c.organization_id::text || '/tenants/' || i.tenant_id::text || '/integrations/' || c.integration_id::text)
order by within_threshold desc, c.organization_id, i.tenant_id, c.integration_id
limit @lim;

-- name: CountUnfinishedTenantRotations :one
-- Rotations not yet finished in one tenant (the per-tenant limit).
select count(*) from operations
where organization_id = @organization_id and kind = 'rotate' and state in ('pending', 'running')
  and target like @target_prefix::text || '%';

-- name: SetCredentialExpiryRead :one
-- The credential's expiry date as Entra has it, and when it was read.
update credentials set end_time = @end_time, expiry_read_time = @expiry_read_time, update_time = now()
where organization_id = @organization_id and id = @id
returning *;

-- name: SetCredentialRenewalNotBefore :one
update credentials set renewal_not_before = @renewal_not_before, update_time = now()
where organization_id = @organization_id and id = @id
returning *;

