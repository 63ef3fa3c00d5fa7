-- A webhook whose secret_version is 0 is pending (its create has not
-- finished): invisible to every API query.

-- name: CountWebhooksLockingOrganization :one
-- The organization's row is locked for update so concurrent creates count
-- one after the other.
select count(*) from webhooks where organization_id = (
  select o.id from organizations o where o.id = @organization_id for update);

-- name: InsertWebhook :one
insert into webhooks (organization_id, id, url, events, disabled, secret_path, secret_version)
values (@organization_id, @id, @url, @events, true, @secret_path, 0)
returning *;

-- name: GetWebhookAny :one
-- Pending or not (a create's replay).
select * from webhooks where organization_id = @organization_id and id = @id;

-- name: FinishCreateWebhook :one
update webhooks set secret_version = @secret_version, disabled = @disabled, update_time = now()
where organization_id = @organization_id and id = @id and secret_version = 0
returning *;

-- name: GetWebhook :one
select * from webhooks where organization_id = @organization_id and id = @id and secret_version > 0;

-- name: GetWebhookForUpdate :one
select * from webhooks where organization_id = @organization_id and id = @id and secret_version > 0 for update;

-- name: ListWebhooks :many
select * from webhooks where organization_id = @organization_id and secret_version > 0 and id > @after
order by id limit @lim;

-- name: UpdateWebhook :one
update webhooks set url = @url, events = @events, disabled = @disabled, update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id
returning *;

-- name: DeleteWebhook :execrows
delete from webhooks where organization_id = @organization_id and id = @id;

-- name: ListOrganizationWebhookSecrets :many
select secret_path from webhooks where organization_id = @organization_id;

-- name: ReapPendingWebhooks :many
-- Background work across organizations.
delete from webhooks where secret_version = 0 and create_time < @cutoff
returning organization_id, id, secret_path;

-- name: DeleteRequestKeysOfResource :exec
delete from idempotency_keys where organization_id = @organization_id and resource_name = @resource_name;

-- name: InsertWebhookDeliveries :many
-- One pending delivery per enabled webhook of the organization subscribed to the event.
insert into webhook_deliveries (organization_id, webhook_id, event, resource, payload)
select w.organization_id, w.id, @event::text, @resource::text, @payload::jsonb from webhooks w
where w.organization_id = @organization_id::uuid and not w.disabled and w.secret_version > 0 and @event::text = any(w.events)
returning id;

-- name: ListWebhookDeliveries :many
select * from webhook_deliveries
where organization_id = @organization_id and webhook_id = @webhook_id and id < @before
order by id desc limit @lim;

-- name: GetDeliveryForSend :one
select sqlc.embed(d), w.url, w.secret_path, w.secret_version, w.disabled
from webhook_deliveries d
join webhooks w on w.organization_id = d.organization_id and w.id = d.webhook_id
where d.organization_id = @organization_id and d.id = @id;

-- name: RecordWebhookAttempt :exec
update webhook_deliveries set status = @status, attempts = @attempts, last_status_code = @last_status_code,
  last_error = @last_error, next_attempt_time = @next_attempt_time, deliver_time = @deliver_time,
  last_attempt_time = @last_attempt_time
where organization_id = @organization_id and id = @id and status = 'pending';

-- name: GetWebhookDelivery :one
-- A delivery of a visible webhook.
select d.* from webhook_deliveries d
join webhooks w on w.organization_id = d.organization_id and w.id = d.webhook_id and w.secret_version > 0
where d.organization_id = @organization_id and d.webhook_id = @webhook_id and d.id = @id;

-- name: InsertWebhookRedelivery :one
-- A new pending delivery of a delivery's event and payload to its webhook.
insert into webhook_deliveries (organization_id, webhook_id, event, resource, payload, redelivery_of)
select d.organization_id, d.webhook_id, d.event, d.resource, d.payload, d.id from webhook_deliveries d
where d.organization_id = @organization_id and d.webhook_id = @webhook_id and d.id = @id
returning *;

-- name: InsertWebhookDeliveriesMany :many
-- InsertWebhookDeliveries for several events at once, of any
-- organizations: @events is a JSON array of {"organization_id", "event",
-- "resource", "payload"}. One statement for a group of checks' events
-- (the sweep's grouped records).
insert into webhook_deliveries (organization_id, webhook_id, event, resource, payload)
select w.organization_id, w.id, x.v->>'event', x.v->>'resource', x.v->'payload'
from jsonb_array_elements(@events::jsonb) as x(v)
join webhooks w on w.organization_id = (x.v->>'organization_id')::uuid and not w.disabled and w.secret_version > 0
  and x.v->>'event' = any(w.events)
returning organization_id, id;
