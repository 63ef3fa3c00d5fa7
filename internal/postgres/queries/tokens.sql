-- Tokens instead of secrets (internal/token, docs/credentials.md).

-- name: AddTokenIssuances :one
-- Adds a replica's counts for one (key or workload identity, integration,
-- API, hour); inserted is true when this made the row (the window's first
-- flush anywhere).
insert into token_issuances (organization_id, api_key_id, subject, integration_id, api, window_start, issued, fetched)
values (@organization_id, @api_key_id, @subject, @integration_id, @api, @window_start, @issued, @fetched)
on conflict on constraint token_issuances_pk do update
set issued = token_issuances.issued + excluded.issued, fetched = token_issuances.fetched + excluded.fetched, update_time = now()
returning (xmax = 0)::boolean as inserted;

-- name: ListTokenIssuances :many
-- An organization's counts since a time, newest window first (tests, reports).
select * from token_issuances
where organization_id = @organization_id and window_start >= @since
order by window_start desc, api_key_id, subject, integration_id, api;

-- name: UpsertCredentialConsumer :one
-- Registers the consumer on its first acknowledgement; later ones move it
-- to the credential it names.
insert into credential_consumers (organization_id, integration_id, consumer, credential_id, acknowledge_time)
values (@organization_id, @integration_id, @consumer, @credential_id, @acknowledge_time)
on conflict on constraint credential_consumers_pk do update
set credential_id = excluded.credential_id, acknowledge_time = excluded.acknowledge_time
returning *;

-- name: ListCredentialConsumers :many
select * from credential_consumers
where organization_id = @organization_id and integration_id = @integration_id
order by consumer;

-- name: LockIntegrationCredentials :many
-- The integration's live credentials (active, retiring), row-locked until
-- the transaction ends: an acknowledgement and a rotation's activation or
-- the retirer do not interleave.
select * from credentials
where organization_id = @organization_id and integration_id = @integration_id and state in ('active', 'retiring')
order by create_time, id
for update;

-- name: EndCredentialOverlap :one
-- Brings a retiring credential's overlap end forward to @at (never later).
update credentials set overlap_end_time = least(overlap_end_time, @at::timestamptz), update_time = now()
where organization_id = @organization_id and id = @id and state = 'retiring' and overlap_end_time is not null
returning *;

-- name: ListStaleConsumers :many
-- Consumers still not on the active credential of an integration whose
-- rotated-out credential is within its announcement margin: from
-- overlap_end_time minus @margin, or, for overlaps shorter than twice the
-- margin, from half-way (the credential's update_time is when it became
-- retiring), and not announced for that credential yet. Spans
-- organizations (the leader's periodic job).
select cc.organization_id, cc.integration_id, cc.consumer, cc.credential_id, cc.acknowledge_time,
  r.id as retiring_id, r.overlap_end_time::timestamptz as overlap_end_time, i.tenant_id, i.kind
from credentials r
join integrations i on i.organization_id = r.organization_id and i.id = r.integration_id
join credential_consumers cc on cc.organization_id = r.organization_id and cc.integration_id = r.integration_id
where r.state = 'retiring' and r.overlap_end_time is not null
  and @now::timestamptz >= r.overlap_end_time - least(make_interval(secs => sqlc.arg(margin_seconds)::float8), (r.overlap_end_time - r.update_time) / 2)
  and cc.stale_announced_for is distinct from r.id
  and not exists (select 1 from credentials a where a.organization_id = cc.organization_id and a.integration_id = cc.integration_id
    and a.state = 'active' and a.id = cc.credential_id)
order by r.overlap_end_time, cc.organization_id, cc.integration_id, cc.consumer
limit @lim;

-- name: MarkConsumerAnnounced :execrows
update credential_consumers set stale_announced_for = @retiring_id
where organization_id = @organization_id and integration_id = @integration_id and consumer = @consumer
  and stale_announced_for is distinct from @retiring_id;

-- name: GetTokenTarget :one
-- What IssueAccessToken needs for a cached token: the integration's
-- kind, features, mode, state, client ID and tenant, and its active
-- credential's ID, type and version (the cache key); one narrow read.
select i.tenant_id, i.kind, i.features, i.management_mode, i.state, i.client_id,
  c.id as credential_id, c.type as credential_type, c.secret_version as credential_secret_version
from integrations i
left join credentials c on c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active'
where i.organization_id = @organization_id and i.id = @id and not i.pending;
