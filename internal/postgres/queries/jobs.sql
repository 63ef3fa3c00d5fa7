-- Background work (internal/jobs): these span organizations.

-- name: ListDueTenants :many
-- Customer tenants with a visible integration (not being provisioned: its
-- provision operation checks it) last checked before due_before (or never), in (organization, tenant) order, with until when
-- Microsoft asked the tenant to be left alone (the epoch: not throttled).
select i.organization_id, i.tenant_id, coalesce(max(th.until_time), 'epoch'::timestamptz)::timestamptz as throttled_until
from integrations i
left join tenant_throttles th on th.organization_id = i.organization_id and th.tenant_id = i.tenant_id
where not i.pending and i.state <> 'provisioning' and (i.last_check_time is null or i.last_check_time < @due_before)
  and (i.organization_id, i.tenant_id) > (@after_org::uuid, @after_tenant::uuid)
group by i.organization_id, i.tenant_id
order by i.organization_id, i.tenant_id
limit @lim;

-- name: ListDueTenantIntegrations :many
-- One tenant's visible integrations (not being provisioned) last checked
-- before due_before (or never), in ID order.
select id from integrations
where organization_id = @organization_id and tenant_id = @tenant_id and not pending and state <> 'provisioning'
  and (last_check_time is null or last_check_time < @due_before) and id > @after
order by id
limit @lim;

-- name: GetTenantThrottle :one
select until_time from tenant_throttles where organization_id = @organization_id and tenant_id = @tenant_id;

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
