-- An integration a deprovision operation is removing is in the state
-- 'deprovisioning' (the sweep skips it, checks recorded meanwhile are
-- history only); a deprovision that fails or is canceled hands it back as
-- 'unverified' (issue 8 item 5).

-- +goose Up
alter table integrations drop constraint integrations_state_ck;
alter table integrations add constraint integrations_state_ck check (state in
  ('unverified', 'healthy', 'propagating', 'degraded', 'broken', 'blocked-by-policy', 'provisioning', 'deprovisioning'));

-- +goose Down
update integrations set state = 'unverified' where state = 'deprovisioning';
alter table integrations drop constraint integrations_state_ck;
alter table integrations add constraint integrations_state_ck check (state in
  ('unverified', 'healthy', 'propagating', 'degraded', 'broken', 'blocked-by-policy', 'provisioning'));
