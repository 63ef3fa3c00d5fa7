-- Operations, follow-ups (internal/operation): polling steps ("not yet,
-- look again after D", bounded by a deadline), and fast takeover of an
-- operation whose runner died (the operations janitor supersedes its River
-- job by an incarnation number once its lease has expired).

-- +goose Up
alter table operations add column incarnation integer not null default 0;
comment on column operations.incarnation is
  'Bumped by the operations janitor when it takes an operation from a dead runner (expired lease) and enqueues a new River job for it; a job of an older incarnation ends without doing anything.';
-- The janitor's scan: unfinished operations only.
create index operations_unfinished_lease_expire_time_idx on operations (lease_expire_time)
  where state in ('pending', 'running');

alter table operation_steps
  add column polls integer not null default 0,
  add column poll_deadline timestamptz,
  add column observation text,
  add constraint operation_steps_polls_ck check (polls >= 0);
comment on column operation_steps.polls is
  'How many times the step said "not yet, look again later" (operation.Poll); polls do not count as attempts.';
comment on column operation_steps.poll_deadline is
  'Set by the step''s first poll: after it the step decides (succeed degraded, or fail); a poll past it fails the step.';
comment on column operation_steps.observation is 'The last poll''s observation: a short message shown to callers (never secrets).';

-- +goose Down
alter table operation_steps drop constraint operation_steps_polls_ck,
  drop column observation, drop column poll_deadline, drop column polls;
drop index operations_unfinished_lease_expire_time_idx;
alter table operations drop column incarnation;
