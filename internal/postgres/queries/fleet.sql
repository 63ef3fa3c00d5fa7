-- name: CountIntegrationsByState :many
-- Every organization; no IDs leave.
select state, count(*) as n from integrations where not pending group by state;

-- name: CountIntegrationsByExpiry :many
-- Every organization: visible integrations by management mode and their
-- active credential's end (window), with the earliest end in each (as_of
-- in the unknown window, which has none).
select i.management_mode, (case
    when c.end_time is null then 'unknown'
    when c.end_time <= sqlc.arg(as_of)::timestamptz then 'expired'
    when c.end_time <= sqlc.arg(as_of)::timestamptz + interval '7 days' then '7d'
    when c.end_time <= sqlc.arg(as_of)::timestamptz + interval '30 days' then '30d'
    when c.end_time <= sqlc.arg(as_of)::timestamptz + interval '90 days' then '90d'
    else 'later' end)::text as bucket, count(*) as n, coalesce(min(c.end_time), sqlc.arg(as_of)::timestamptz)::timestamptz as earliest_end
from integrations i
left join credentials c on c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active'
where not i.pending
group by i.management_mode, bucket;
