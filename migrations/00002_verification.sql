-- Verification: check history, the state-change bookkeeping on integrations,
-- webhooks and their deliveries. River's job tables are migrated by
-- rivermigrate right after goose (internal/postgres/migrate.go).

-- +goose Up
alter table integrations add column state_change_time timestamptz;
alter table integrations add column expiry_warned_time timestamptz;
comment on column integrations.state_change_time is 'When state last changed (set by checks).';
comment on column integrations.expiry_warned_time is 'When the credential-expiring event was last announced; cleared when the credential changes.';
create index integrations_credential_expire_time_idx on integrations (organization_id, credential_expire_time) where not pending;
create index integrations_id_idx on integrations (id) where not pending;

create table checks (
  organization_id uuid        not null,
  id              uuid        not null,
  tenant_id       uuid        not null,
  integration_id  uuid        not null,
  outcome         text        not null,
  trigger         text        not null,
  summary         text        not null,
  steps           jsonb       not null,
  permissions     jsonb       not null default '{}',
  start_time      timestamptz not null,
  end_time        timestamptz not null,
  constraint checks_pk primary key (organization_id, id),
  constraint checks_integration_fk foreign key (organization_id, integration_id)
    references integrations (organization_id, id) on delete cascade,
  constraint checks_outcome_ck check (outcome in
    ('unverified', 'healthy', 'propagating', 'degraded', 'broken', 'blocked-by-policy')),
  constraint checks_trigger_ck check (trigger in ('api', 'schedule'))
);
comment on column checks.steps is 'Step results (name, status, duration, Microsoft error code, message, remedy); never a secret or token.';
create index checks_organization_id_integration_id_id_idx on checks (organization_id, integration_id, id desc);

create table webhooks (
  organization_id uuid        not null,
  id              uuid        not null,
  url             text        not null,
  events          text[]      not null,
  disabled        boolean     not null default false,
  secret_path     text        not null,
  secret_version  bigint      not null default 0,
  create_time     timestamptz not null default now(),
  update_time     timestamptz not null default now(),
  version         bigint      not null default 1,
  constraint webhooks_pk primary key (organization_id, id),
  constraint webhooks_organization_id_fk foreign key (organization_id)
    references organizations (id) on delete cascade,
  constraint webhooks_secret_path_uq unique (secret_path)
);
comment on column webhooks.secret_path is 'Vault KV v2 path of the signing secret (the value is only in Vault).';

create table webhook_deliveries (
  organization_id  uuid        not null,
  id               bigint      generated always as identity,
  webhook_id       uuid        not null,
  event            text        not null,
  resource         text        not null,
  payload          jsonb       not null,
  status           text        not null default 'pending',
  attempts         integer     not null default 0,
  last_status_code integer     not null default 0,
  last_error       text        not null default '',
  create_time      timestamptz not null default now(),
  next_attempt_time timestamptz not null default now(),
  deliver_time     timestamptz,
  constraint webhook_deliveries_pk primary key (organization_id, id),
  constraint webhook_deliveries_webhook_fk foreign key (organization_id, webhook_id)
    references webhooks (organization_id, id) on delete cascade,
  constraint webhook_deliveries_status_ck check (status in ('pending', 'delivered', 'failed'))
);
create index webhook_deliveries_webhook_idx on webhook_deliveries (organization_id, webhook_id, id desc);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_time) where status = 'pending';
comment on table webhook_deliveries is
  'Outbox of webhook events: written in the transaction that records the change; delivered with retries by the delivery worker.';

-- +goose Down
drop table webhook_deliveries;
drop table webhooks;
drop table checks;
drop index integrations_id_idx;
drop index integrations_credential_expire_time_idx;
alter table integrations drop column expiry_warned_time;
alter table integrations drop column state_change_time;
