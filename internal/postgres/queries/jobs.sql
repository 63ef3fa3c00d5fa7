-- Background work (internal/jobs): these span organizations.

-- name: ListDueTenants :many
-- Customer tenants with a visible integration (not being provisioned: its
-- provision operation checks it) last checked before due_before (or never), in (organization, tenant) order, with until when
-- Microsoft asked the tenant to be left alone (the epoch: not throttled).
select i.organization_id, i.tenant_id, coalesce(max(th.until_time), 'epoch'::timestamptz)::timestamptz as throttled_until
from integrations i
left join tenant_throttles th on th.organization_id = i.organization_id and th.tenant_id = i.tenant_id
where not i.pending and i.state not in ('provisioning', 'deprovisioning') and (i.last_check_time is null or i.last_check_time < @due_before)
  and (i.organization_id, i.tenant_id) > (@after_org::uuid, @after_tenant::uuid)
group by i.organization_id, i.tenant_id
order by i.organization_id, i.tenant_id
limit @lim;

-- name: SetTenantThrottle :exec
-- Keeps the later of the recorded and the new time.
insert into tenant_throttles (organization_id, tenant_id, until_time)
values (@organization_id, @tenant_id, @until_time)
on conflict on constraint tenant_throttles_pk do update
set until_time = greatest(tenant_throttles.until_time, excluded.until_time), update_time = now();

-- name: DeleteExpiredTenantThrottles :execrows
delete from tenant_throttles where until_time < @before;

-- name: ListSecretDestructions :many
-- Leftovers of the secret_destructions outbox, moved into River jobs at start-up.
select id, organization_id, secret_path from secret_destructions order by id limit @lim;

-- name: DeleteSecretDestructions :exec
delete from secret_destructions where id = any(@ids::bigint[]);

-- name: ListDueCheckTargets :many
-- One tenant's visible integrations (not being provisioned) last checked
-- before due_before (or never), in ID order, each with its tenant and its
-- active credential (if any): what a batch needs to check a page of them,
-- in one query, with the revision of the organization's permission catalog
-- override (0: none), so that a check reads the override only when it
-- changed, and until when Microsoft asked the tenant to be left alone (the
-- epoch: not throttled), so that a batch needs no query of its own for it.
select sqlc.embed(i), sqlc.embed(t),
  c.id as credential_id, c.type as credential_type, c.key_id as credential_key_id, c.hint as credential_hint,
  c.start_time as credential_start_time, c.end_time as credential_end_time,
  c.secret_path as credential_secret_path, c.secret_version as credential_secret_version,
  c.source as credential_source, c.state as credential_state, c.expiry_warned_time as credential_expiry_warned_time,
  c.create_time as credential_create_time, c.update_time as credential_update_time,
  coalesce(o.revision, 0)::bigint as catalog_revision,
  coalesce((select th.until_time from tenant_throttles th
    where th.organization_id = i.organization_id and th.tenant_id = i.tenant_id), 'epoch'::timestamptz)::timestamptz as throttled_until
from integrations i
join tenants t on t.organization_id = i.organization_id and t.id = i.tenant_id
left join credentials c on c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active'
left join permission_catalog_overrides o on o.organization_id = i.organization_id
where i.organization_id = @organization_id and i.tenant_id = @tenant_id and not i.pending and i.state not in ('provisioning', 'deprovisioning')
  and (i.last_check_time is null or i.last_check_time < @due_before) and i.id > @after
order by i.id
limit @lim;
