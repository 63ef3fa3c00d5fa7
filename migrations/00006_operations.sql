-- Operations: long-running work (provision, deprovision, rotate, bulk
-- onboard) in the spirit of AIP-151. One row per operation, one row per step
-- (rows, not a jsonb array: a step's record is a short update of its own
-- row, fenced by the operation's lease, and steps are queried by state).
-- Driven by one River job per operation (internal/operation).
-- Params, results and step outputs never hold secrets.

-- +goose Up
create table operations (
  organization_id   uuid        not null,
  id                uuid        not null,
  kind              text        not null,
  target            text        not null default '',
  state             text        not null default 'pending',
  cancel_requested  boolean     not null default false,
  params            jsonb       not null default '{}',
  result            jsonb,
  error_code        text,
  error_class       text,
  error_message     text,
  error_remedy      text,
  error_step        text,
  request_id        uuid,
  steps_total       integer     not null,
  steps_done        integer     not null default 0,
  lease_owner       uuid,
  lease_expire_time timestamptz,
  create_time       timestamptz not null default now(),
  update_time       timestamptz not null default now(),
  end_time          timestamptz,
  version           bigint      not null default 1,
  constraint operations_pk primary key (organization_id, id),
  constraint operations_organization_id_fk foreign key (organization_id)
    references organizations (id) on delete cascade,
  constraint operations_organization_id_kind_request_id_uq unique (organization_id, kind, request_id),
  constraint operations_state_ck check (state in ('pending', 'running', 'succeeded', 'failed', 'canceled')),
  constraint operations_end_time_ck check ((end_time is null) = (state in ('pending', 'running'))),
  constraint operations_kind_ck check (kind ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  constraint operations_steps_done_ck check (steps_done between 0 and steps_total)
);
create index operations_organization_id_state_id_idx on operations (organization_id, state, id);
create index operations_organization_id_target_id_idx on operations (organization_id, target, id);
create index operations_organization_id_kind_id_idx on operations (organization_id, kind, id);
comment on table operations is
  'Long-running work. State machine: pending -> running -> succeeded | failed | canceled; pending -> canceled. internal/operation owns the rules.';
comment on column operations.target is 'The resource name the operation works on (AIP resource name), or empty.';
comment on column operations.cancel_requested is
  'Set by CancelOperation; the runner stops at the next step boundary and marks the operation canceled.';
comment on column operations.lease_owner is
  'The runner holding the operation (one River job run); every step record is fenced by it, so two replicas never run one operation''s steps at once.';
comment on column operations.lease_expire_time is 'Until when lease_owner holds the operation; renewed while a step runs.';
comment on column operations.version is
  'Bumped on every visible change (state, step records, cancel); the etag, and what WaitOperation watches. Lease renewals do not bump it.';
comment on column operations.request_id is 'The request_id of the call that started the operation (AIP-155), if any.';

create table operation_steps (
  organization_id   uuid        not null,
  operation_id      uuid        not null,
  ordinal           integer     not null,
  name              text        not null,
  state             text        not null default 'pending',
  attempts          integer     not null default 0,
  start_time        timestamptz,
  end_time          timestamptz,
  next_attempt_time timestamptz,
  error_code        text,
  error_class       text,
  error_message     text,
  error_remedy      text,
  outputs           jsonb       not null default '{}',
  update_time       timestamptz not null default now(),
  constraint operation_steps_pk primary key (organization_id, operation_id, ordinal),
  constraint operation_steps_operation_fk foreign key (organization_id, operation_id)
    references operations (organization_id, id) on delete cascade,
  constraint operation_steps_organization_id_operation_id_name_uq unique (organization_id, operation_id, name),
  constraint operation_steps_state_ck check (state in ('pending', 'running', 'succeeded', 'failed', 'skipped', 'canceled')),
  constraint operation_steps_attempts_ck check (attempts >= 0)
);
comment on column operation_steps.outputs is
  'What the step recorded (e.g. the Entra object IDs it created): what a canceled or failed operation lists as existing. Never secrets.';
comment on column operation_steps.next_attempt_time is 'After a retryable failure: not before this time (backoff or Retry-After).';
comment on column operation_steps.error_class is 'The last error''s class (an mserr class such as throttled, or an apperr reason); kept when a later attempt succeeds.';

-- Every visible change of an operation is announced on commit, so that
-- waiters (WaitOperation) wake without polling. The payload is
-- "<organization_id>/<id>".
-- +goose StatementBegin
create function operations_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('dzconnect_operations', new.organization_id::text || '/' || new.id::text);
  return null;
end;
$$;
-- +goose StatementEnd
create trigger operations_notify_tg after insert or update of version on operations
  for each row execute function operations_notify();

-- +goose Down
drop trigger operations_notify_tg on operations;
drop function operations_notify();
drop table operation_steps;
drop table operations;
