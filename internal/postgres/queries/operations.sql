-- Operations and their steps (internal/operation). Every statement is
-- scoped by organization_id. The runner's lease and the state machine are
-- the domain's: these statements only read and write.

-- name: InsertOperation :one
insert into operations (organization_id, id, kind, target, params, request_id, steps_total)
values (@organization_id, @id, @kind, @target, @params, sqlc.narg(request_id), @steps_total)
returning *;

-- name: InsertOperationSteps :exec
-- One pending step per name, ordinals from 0 in array order.
insert into operation_steps (organization_id, operation_id, ordinal, name)
select @organization_id::uuid, @operation_id::uuid, s.ord::integer - 1, s.name
from unnest(@names::text[]) with ordinality as s(name, ord);

-- name: LockOperationWithSteps :one
-- The operation row-locked until the transaction ends, the transaction's
-- time (which every lease and backoff decision uses), and its steps as a
-- JSON array in ordinal order, in one round trip (the runner's records).
select sqlc.embed(operations), now()::timestamptz as db_now,
  coalesce((select jsonb_agg(to_jsonb(st) order by st.ordinal) from operation_steps st
            where st.organization_id = operations.organization_id and st.operation_id = operations.id),
           '[]'::jsonb)::jsonb as steps
from operations
where operations.organization_id = @organization_id and operations.id = @id for update;

-- name: GetOperationWithSteps :one
-- The operation and its steps as a JSON array, in one round trip (Get, Wait).
select sqlc.embed(operations),
  coalesce((select jsonb_agg(to_jsonb(st) order by st.ordinal) from operation_steps st
            where st.organization_id = operations.organization_id and st.operation_id = operations.id),
           '[]'::jsonb)::jsonb as steps
from operations
where operations.organization_id = @organization_id and operations.id = @id;

-- name: GetOperationVersion :one
-- The operation's version and state alone: what a waiter reads on each
-- change notification before reading it whole.
select version, state from operations where organization_id = @organization_id and id = @id;

-- name: ListOperationSteps :many
select * from operation_steps where organization_id = @organization_id and operation_id = @operation_id order by ordinal;

-- name: ListStepsOfOperations :many
-- The steps of several operations of one organization (a List page).
select * from operation_steps where organization_id = @organization_id and operation_id = any(@operation_ids::uuid[])
order by operation_id, ordinal;

-- name: ListOperations :many
-- Newest first; each filter applies when not null.
select * from operations
where organization_id = @organization_id
  and (sqlc.narg(before)::uuid is null or id < sqlc.narg(before)::uuid)
  and (sqlc.narg(state)::text is null or state = sqlc.narg(state)::text)
  and (sqlc.narg(kind)::text is null or kind = sqlc.narg(kind)::text)
  and (sqlc.narg(target)::text is null or target = sqlc.narg(target)::text)
order by id desc
limit @lim;

-- name: UpdateOperation :one
-- Writes the mutable fields and bumps the version (a visible change: the
-- trigger notifies waiters on commit).
update operations set
  state = @state, cancel_requested = @cancel_requested, result = sqlc.narg(result),
  error_code = sqlc.narg(error_code), error_class = sqlc.narg(error_class), error_message = sqlc.narg(error_message),
  error_remedy = sqlc.narg(error_remedy), error_step = sqlc.narg(error_step),
  steps_done = @steps_done, end_time = sqlc.narg(end_time),
  lease_owner = sqlc.narg(lease_owner), lease_expire_time = sqlc.narg(lease_expire_time),
  update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id
returning *;

-- name: SetOperationLease :exec
-- Takes, renews or (with nulls) releases the runner's lease. Not a visible
-- change: the version stays.
update operations set lease_owner = sqlc.narg(lease_owner), lease_expire_time = sqlc.narg(lease_expire_time)
where organization_id = @organization_id and id = @id;

-- name: RenewOperationLease :execrows
-- Extends the lease while its owner still holds it; 0 rows: lost.
update operations set lease_expire_time = now() + make_interval(secs => @seconds::float8)
where organization_id = @organization_id and id = @id and lease_owner = @lease_owner;

-- name: UpdateOperationStep :exec
update operation_steps set
  state = @state, attempts = @attempts, start_time = sqlc.narg(start_time), end_time = sqlc.narg(end_time),
  next_attempt_time = sqlc.narg(next_attempt_time),
  error_code = sqlc.narg(error_code), error_class = sqlc.narg(error_class), error_message = sqlc.narg(error_message),
  error_remedy = sqlc.narg(error_remedy), outputs = @outputs,
  polls = @polls, poll_deadline = sqlc.narg(poll_deadline), observation = sqlc.narg(observation),
  update_time = now()
where organization_id = @organization_id and operation_id = @operation_id and ordinal = @ordinal;

-- name: ListStaleOperations :many
-- The operations janitor's scan, across organizations (like the fleet
-- sweep): unfinished operations whose runner's lease expired (the runner
-- died or hung), or that nobody holds and nothing has touched for
-- @idle_seconds while their current step is not waiting for a later
-- attempt (their River job is lost). The domain re-checks each under its
-- row lock (operation.Janitor).
select o.organization_id, o.id from operations o
where o.state in ('pending', 'running')
  and ((o.lease_owner is not null and o.lease_expire_time < now())
    or (o.lease_owner is null
      and greatest(o.update_time, coalesce(o.lease_expire_time, o.update_time)) < now() - make_interval(secs => @idle_seconds::float8)
      and not exists (select 1 from operation_steps s
        where s.organization_id = o.organization_id and s.operation_id = o.id
          and s.state = 'pending' and s.next_attempt_time > now() - make_interval(secs => @idle_seconds::float8))))
order by o.lease_expire_time nulls last
limit @lim;

-- name: SupersedeOperationRun :one
-- Takes the operation from its runner: the lease is cleared (a hung runner
-- can no longer renew it or record) and the incarnation bumped, so only a
-- job of the new incarnation runs it. lease_expire_time keeps when this
-- happened (the idle clock of ListStaleOperations). Not a visible change.
update operations set incarnation = incarnation + 1, lease_owner = null, lease_expire_time = now()
where organization_id = @organization_id and id = @id
returning incarnation;

-- name: ListenOperations :exec
-- Subscribes the session to the operations trigger's notifications.
listen dzconnect_operations;

-- name: WriteOperation :one
-- UpdateOperationStep for each step in @steps (a JSON array of step rows,
-- by ordinal; an absent field is null) and UpdateOperation, in one
-- statement: the runner's record of an attempt's outcome and of the next
-- attempt is one round trip. The version is bumped once (one notification
-- to waiters on commit). With a fence (the version and lease owner the
-- writer last saw), nothing is written unless the operation is still at
-- that version and held by that owner (no row is returned then): the
-- steps are written only with the operation (written_steps reads op_upd's
-- answer), so the statement is all or nothing even in autocommit.
with op_upd as (
  update operations o set
    state = @state, cancel_requested = @cancel_requested, result = sqlc.narg(result),
    error_code = sqlc.narg(error_code), error_class = sqlc.narg(error_class), error_message = sqlc.narg(error_message),
    error_remedy = sqlc.narg(error_remedy), error_step = sqlc.narg(error_step),
    steps_done = @steps_done, end_time = sqlc.narg(end_time),
    lease_owner = sqlc.narg(lease_owner), lease_expire_time = sqlc.narg(lease_expire_time),
    update_time = now(), version = o.version + 1
  where o.organization_id = @organization_id and o.id = @id
    and (sqlc.narg(fence_version)::bigint is null or o.version = sqlc.narg(fence_version)::bigint)
    and (sqlc.narg(fence_owner)::uuid is null or o.lease_owner = sqlc.narg(fence_owner)::uuid)
  returning o.*
), written_steps as (
  update operation_steps st set
    state = x.v->>'state', attempts = (x.v->>'attempts')::integer,
    start_time = (x.v->>'start_time')::timestamptz, end_time = (x.v->>'end_time')::timestamptz,
    next_attempt_time = (x.v->>'next_attempt_time')::timestamptz,
    error_code = x.v->>'error_code', error_class = x.v->>'error_class', error_message = x.v->>'error_message',
    error_remedy = x.v->>'error_remedy', outputs = coalesce(x.v->'outputs', '{}'::jsonb),
    polls = (x.v->>'polls')::integer, poll_deadline = (x.v->>'poll_deadline')::timestamptz, observation = x.v->>'observation',
    update_time = now()
  from jsonb_array_elements(@steps::jsonb) as x(v)
  where st.organization_id = @organization_id and st.operation_id = @id and st.ordinal = (x.v->>'ordinal')::integer
    and exists (select 1 from op_upd)
  returning st.ordinal
)
select * from op_upd;
