-- Provisioning (issue 8): an integration dzconnect provisions is visible
-- from the moment ProvisionIntegration is accepted, in the state
-- 'provisioning' until its operation's verify step sets the outcome (the
-- sweep skips it meanwhile). Its client_id is the nil UUID until the
-- application is registered (step b records it).
--
-- One provisioned integration per tenant and kind: two concurrent
-- ProvisionIntegration calls without a shared request_id cannot both
-- commit (the second gets AlreadyExists), so they never make two
-- applications (the application's uniqueName is the first guard).

-- +goose Up
alter table integrations drop constraint integrations_state_ck;
alter table integrations add constraint integrations_state_ck check (state in
  ('unverified', 'healthy', 'propagating', 'degraded', 'broken', 'blocked-by-policy', 'provisioning'));
create unique index integrations_provisioned_kind_uq on integrations (organization_id, tenant_id, kind)
  where management_mode = 'provisioned';
-- The provision operation's verify step records its checks as trigger 'provision'.
alter table checks drop constraint checks_trigger_ck;
alter table checks add constraint checks_trigger_ck check (trigger in ('api', 'schedule', 'provision'));
comment on index integrations_provisioned_kind_uq is 'At most one provisioned integration of a kind per tenant (issue 8 item 6).';

-- +goose Down
delete from checks where trigger = 'provision';
alter table checks drop constraint checks_trigger_ck;
alter table checks add constraint checks_trigger_ck check (trigger in ('api', 'schedule'));
drop index integrations_provisioned_kind_uq;
update integrations set state = 'unverified' where state = 'provisioning';
alter table integrations drop constraint integrations_state_ck;
alter table integrations add constraint integrations_state_ck check (state in
  ('unverified', 'healthy', 'propagating', 'degraded', 'broken', 'blocked-by-policy'));
