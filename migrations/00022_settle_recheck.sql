-- Honest propagating verdicts (issue 10 item 9b, docs/verification.md): a
-- check that found lag inside the settle window records when its verdict
-- becomes final, and the re-check at that time (a River job queued in the
-- recording transaction) records its checks with trigger 'settle'.
-- The delivery log (issue 10 item 9f, docs/webhooks.md): when the last
-- attempt ran (River's attempted_at, recorded by the worker beside the next
-- attempt time), and a delivery made by RedeliverWebhookDelivery names the
-- one it repeats.

-- +goose Up
alter table checks add column settle_end_time timestamptz;
comment on column checks.settle_end_time is
  'For a propagating check: when the settle window ends and the verdict becomes final (a settle re-check runs then); null otherwise.';
alter table checks drop constraint checks_trigger_ck;
alter table checks add constraint checks_trigger_ck check (trigger in ('api', 'schedule', 'provision', 'settle'));

alter table webhook_deliveries add column last_attempt_time timestamptz;
comment on column webhook_deliveries.last_attempt_time is
  'When the last attempt started (the deliver_webhook job''s attempted_at); null before the first.';
alter table webhook_deliveries add column redelivery_of bigint;
comment on column webhook_deliveries.redelivery_of is
  'The delivery this one repeats (RedeliverWebhookDelivery: same event and payload, a new attempt history); null for an event''s first delivery.';

-- +goose Down
alter table webhook_deliveries drop column redelivery_of;
alter table webhook_deliveries drop column last_attempt_time;
delete from checks where trigger = 'settle';
alter table checks drop constraint checks_trigger_ck;
alter table checks add constraint checks_trigger_ck check (trigger in ('api', 'schedule', 'provision'));
alter table checks drop column settle_end_time;
