-- Retention (internal/app's janitor tasks, --retention-*): each statement
-- deletes at most @lim rows, oldest first, so a janitor run stays short
-- and the next run continues.

-- name: DeleteOldChecks :execrows
-- Checks that ended before @cutoff, except each integration's latest
-- (its current verdict stays readable however old).
delete from checks c where c.ctid = any (array(
  select o.ctid from checks o
  where o.end_time < @cutoff
    and exists (select 1 from checks n where n.organization_id = o.organization_id
                and n.integration_id = o.integration_id and n.end_time > o.end_time)
  limit @lim));

-- name: DeleteOldAuditEvents :execrows
delete from audit_events a where a.ctid = any (array(
  select o.ctid from audit_events o where o.create_time < @cutoff limit @lim));

-- name: DeleteOldRequestKeys :execrows
-- A request_id older than this is forgotten: a retry after it creates
-- again (docs/operating.md says how long request IDs are honoured).
delete from idempotency_keys k where k.ctid = any (array(
  select o.ctid from idempotency_keys o where o.create_time < @cutoff limit @lim));

-- name: DeleteOldWebhookDeliveries :execrows
-- Finished deliveries (delivered or failed for good); pending ones stay.
delete from webhook_deliveries d where d.ctid = any (array(
  select o.ctid from webhook_deliveries o where o.status <> 'pending' and o.create_time < @cutoff limit @lim));
