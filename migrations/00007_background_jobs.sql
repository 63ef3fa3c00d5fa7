-- Background work has one mechanism, River (its tables are migrated by
-- rivermigrate after these files). What remains here is state River does
-- not keep: until when Microsoft asked a customer tenant to be left alone,
-- shared by every replica so that the limit holds fleet-wide and is applied
-- before a tenant's check batch is taken, not after.

-- +goose Up
create table tenant_throttles (
  organization_id uuid        not null,
  tenant_id       uuid        not null,
  until_time      timestamptz not null,
  update_time     timestamptz not null default now(),
  constraint tenant_throttles_pk primary key (organization_id, tenant_id),
  constraint tenant_throttles_tenant_fk foreign key (organization_id, tenant_id)
    references tenants (organization_id, id) on delete cascade
);
comment on table tenant_throttles is
  'Microsoft answered a call for the tenant with 429 + Retry-After: no check batch of the tenant runs before until_time (the sweep schedules it at or after, a running batch snoozes until then).';

-- Webhook deliveries are River jobs (kind deliver_webhook): the row stays
-- as the delivery log the API lists; River holds the lease and the retry
-- schedule, so the claim index goes.
drop index webhook_deliveries_due_idx;
comment on table webhook_deliveries is
  'Delivery log of webhook events: written in the transaction that records the change, together with one River job (deliver_webhook) that sends it with retries.';
comment on column webhook_deliveries.next_attempt_time is
  'When the next attempt is due (informational: the River job deliver_webhook schedules it).';

-- +goose Down
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_time) where status = 'pending';
drop table tenant_throttles;
