-- name: InsertCheck :exec
insert into checks (organization_id, tenant_id, integration_id, id, outcome, trigger, summary, steps, permissions,
  start_time, end_time)
values (@organization_id, @tenant_id, @integration_id, @id, @outcome, @trigger, @summary, @steps, @permissions,
  @start_time, @end_time);

-- name: RecordUnchangedCheck :execrows
-- The sweep's fast path, one statement: the check row and the integration's
-- last check time, written only if the integration is still at the version
-- the check ran on, its state is the check's outcome, and (when the check
-- found the credential expiring) that credential's warning already went
-- out. 0 rows: nothing written, the caller takes the full path.
with upd as (
  update integrations i set last_check_time = @end_time
  where i.organization_id = @organization_id and i.id = @integration_id and not i.pending
    and i.version = @expect_version and i.state = @outcome
    and (not @expect_warned::boolean or exists (
      select 1 from credentials c
      where c.organization_id = i.organization_id and c.id = @credential_id::uuid and c.integration_id = i.id
        and c.state = 'active' and c.expiry_warned_time is not null))
  returning i.organization_id
)
insert into checks (organization_id, tenant_id, integration_id, id, outcome, trigger, summary, steps, permissions,
  start_time, end_time)
select upd.organization_id, @tenant_id, @integration_id, @id, @outcome, @trigger, @summary, @steps, @permissions,
  @start_time, @end_time
from upd;

-- name: SetIntegrationState :one
-- A check's verdict: state, last check time and, when the state changes,
-- the state change time. The version (etag) stays: state is output only.
update integrations set state = @state, last_check_time = @check_time,
  state_change_time = case when state <> @state then @check_time else state_change_time end
where organization_id = @organization_id and id = @id
returning *;

-- name: MarkCredentialWarned :execrows
update credentials set expiry_warned_time = @warned_time
where organization_id = @organization_id and id = @id;

-- name: ListChecks :many
-- Newest first.
select * from checks
where organization_id = @organization_id and integration_id = @integration_id and id < @before
order by id desc limit @lim;

-- name: GetCheckTarget :one
-- A visible integration, its tenant and its active credential (if any), in
-- one query: what a check needs.
select sqlc.embed(i), sqlc.embed(t),
  c.id as credential_id, c.type as credential_type, c.key_id as credential_key_id, c.hint as credential_hint,
  c.start_time as credential_start_time, c.end_time as credential_end_time,
  c.secret_path as credential_secret_path, c.secret_version as credential_secret_version,
  c.source as credential_source, c.state as credential_state, c.expiry_warned_time as credential_expiry_warned_time,
  c.create_time as credential_create_time, c.update_time as credential_update_time
from integrations i
join tenants t on t.organization_id = i.organization_id and t.id = i.tenant_id
left join credentials c on c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active'
where i.organization_id = @organization_id and i.id = @id and not i.pending;
