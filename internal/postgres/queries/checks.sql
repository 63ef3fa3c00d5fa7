-- name: InsertCheck :exec
insert into checks (organization_id, tenant_id, integration_id, id, outcome, trigger, summary, steps, permissions,
  start_time, end_time, catalog_version, settle_end_time)
values (@organization_id, @tenant_id, @integration_id, @id, @outcome, @trigger, @summary, @steps, @permissions,
  @start_time, @end_time, sqlc.narg(catalog_version), @settle_end_time);

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

-- name: RecordExpectedChecks :many
-- The sweep's fast path, for a group of checks in one statement (the arrays
-- hold one check each, position by position): each check row, its
-- integration's last check time and its verdict (state; the state change
-- time when the state changes) are written only if the integration is
-- still as the check read it: at the version the check ran on, in the
-- state it was read in (expect_state), and (credential_id not nil: the
-- check found the credential expiring) with that credential's warning
-- already sent; for a check that changes the state, also with the same
-- active credential and end time as read (event_credential_id, nil for
-- none; event_credential_end, 0001-01-01 UTC for none), which the
-- state-change event carries. Returns the IDs of the checks written; for
-- the others nothing was written and the caller takes the full path.
with u as (
  -- Set-returning functions in one select list advance together (arrays of
  -- equal length): one row per check.
  select unnest(@organization_ids::uuid[]) as organization_id, unnest(@tenant_ids::uuid[]) as tenant_id,
    unnest(@integration_ids::uuid[]) as integration_id, unnest(@ids::uuid[]) as id,
    unnest(@outcomes::text[]) as outcome, unnest(@triggers::text[]) as trigger, unnest(@summaries::text[]) as summary,
    unnest(@steps::jsonb[]) as steps, unnest(@permissions::jsonb[]) as permissions,
    unnest(@start_times::timestamptz[]) as start_time, unnest(@end_times::timestamptz[]) as end_time,
    unnest(@expect_versions::bigint[]) as expect_version, unnest(@expect_states::text[]) as expect_state,
    unnest(@credential_ids::uuid[]) as credential_id,
    unnest(@event_credential_ids::uuid[]) as event_credential_id,
    unnest(@event_credential_ends::timestamptz[]) as event_credential_end,
    unnest(@catalog_versions::text[]) as catalog_version
),
upd as (
  update integrations i set last_check_time = u.end_time, state = u.outcome,
    state_change_time = case when i.state <> u.outcome then u.end_time else i.state_change_time end
  from u
  -- The IDs again, as an array the index on id can take: joined only
  -- with u, a small fleet's planner chose a scan of every integration
  -- and a hash join (cheaper by its estimates below ~5,000 rows), in
  -- every record (session 9: most of the sweep's Postgres time at 2,000).
  where i.id = any(@integration_ids::uuid[])
    and i.organization_id = u.organization_id and i.id = u.integration_id and not i.pending
    and i.version = u.expect_version and i.state = u.expect_state
    and (u.credential_id = '00000000-0000-0000-0000-000000000000'::uuid or exists (
      select 1 from credentials c
      where c.organization_id = i.organization_id and c.id = u.credential_id and c.integration_id = i.id
        and c.state = 'active' and c.expiry_warned_time is not null))
    and (u.expect_state = u.outcome or coalesce((
      select c.id = u.event_credential_id
        and c.end_time is not distinct from nullif(u.event_credential_end, '0001-01-01 00:00:00+00'::timestamptz)
      from credentials c
      where c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active'),
      u.event_credential_id = '00000000-0000-0000-0000-000000000000'::uuid))
  returning i.organization_id, i.id
)
insert into checks (organization_id, tenant_id, integration_id, id, outcome, trigger, summary, steps, permissions,
  start_time, end_time, catalog_version)
select u.organization_id, u.tenant_id, u.integration_id, u.id, u.outcome, u.trigger, u.summary, u.steps, u.permissions,
  u.start_time, u.end_time, nullif(u.catalog_version, '')
from u join upd on upd.organization_id = u.organization_id and upd.id = u.integration_id
returning id;

-- name: LockIntegrations :many
-- The sweep's grouped record: visible integrations of any organizations
-- (the arrays hold one (organization, integration) pair each, position by
-- position), row-locked in ID order so that two lockers of overlapping sets
-- cannot deadlock. Missing or pending ones are absent.
select i.* from integrations i
join (select unnest(@organization_ids::uuid[]) as organization_id, unnest(@ids::uuid[]) as id) u
  on i.organization_id = u.organization_id and i.id = u.id
where not i.pending
order by i.id
for update of i;

-- name: ListCredentialsOfIntegrations :many
-- The credentials of integrations of any organizations (pairs position by
-- position), oldest first.
select c.* from credentials c
join (select unnest(@organization_ids::uuid[]) as organization_id, unnest(@integration_ids::uuid[]) as integration_id) u
  on c.organization_id = u.organization_id and c.integration_id = u.integration_id
order by c.integration_id, c.create_time, c.id;

-- name: InsertChecks :exec
-- Several check rows in one statement (the arrays hold one check each; a
-- settle end time of 0001-01-01 UTC is none).
insert into checks (organization_id, tenant_id, integration_id, id, outcome, trigger, summary, steps, permissions,
  start_time, end_time, catalog_version, settle_end_time)
select u.organization_id, u.tenant_id, u.integration_id, u.id, u.outcome, u.trigger, u.summary, u.steps, u.permissions,
  u.start_time, u.end_time, nullif(u.catalog_version, ''), nullif(u.settle_end_time, '0001-01-01 00:00:00+00'::timestamptz)
from (select unnest(@organization_ids::uuid[]) as organization_id, unnest(@tenant_ids::uuid[]) as tenant_id,
  unnest(@integration_ids::uuid[]) as integration_id, unnest(@ids::uuid[]) as id, unnest(@outcomes::text[]) as outcome,
  unnest(@triggers::text[]) as trigger, unnest(@summaries::text[]) as summary, unnest(@steps::jsonb[]) as steps,
  unnest(@permissions::jsonb[]) as permissions, unnest(@start_times::timestamptz[]) as start_time,
  unnest(@end_times::timestamptz[]) as end_time, unnest(@catalog_versions::text[]) as catalog_version,
  unnest(@settle_end_times::timestamptz[]) as settle_end_time) u;

-- name: SetIntegrationStates :many
-- Several checks' verdicts in one statement (the arrays hold one
-- integration each): as SetIntegrationState, row by row.
update integrations i set state = u.state, last_check_time = u.check_time,
  state_change_time = case when i.state <> u.state then u.check_time else i.state_change_time end
from (select unnest(@organization_ids::uuid[]) as organization_id, unnest(@ids::uuid[]) as id,
  unnest(@states::text[]) as state, unnest(@check_times::timestamptz[]) as check_time) u
where i.organization_id = u.organization_id and i.id = u.id
returning i.*;
