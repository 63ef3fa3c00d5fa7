-- Foundation: organizations, API keys, tenants, integrations, audit trail,
-- idempotency keys and the secret-destruction outbox.
-- Every table holding customer data carries organization_id, and every
-- query filters by it. Secrets never live here: integrations only point at
-- a Vault path and version; API keys are stored as SHA-256 hashes.

-- +goose Up
create table organizations (
  id           uuid        not null,
  display_name text        not null,
  create_time  timestamptz not null default now(),
  update_time  timestamptz not null default now(),
  version      bigint      not null default 1,
  constraint organizations_pk primary key (id),
  constraint organizations_display_name_ck check (char_length(display_name) between 1 and 200)
);

create table api_keys (
  organization_id uuid        not null,
  id              uuid        not null,
  display_name    text        not null,
  role            text        not null,
  key_prefix      text        not null,
  key_hash        bytea       not null,
  expire_time     timestamptz,
  create_time     timestamptz not null default now(),
  update_time     timestamptz not null default now(),
  version         bigint      not null default 1,
  constraint api_keys_pk primary key (organization_id, id),
  constraint api_keys_organization_id_fk foreign key (organization_id)
    references organizations (id) on delete cascade,
  constraint api_keys_key_hash_uq unique (key_hash),
  constraint api_keys_role_ck check (role in ('admin', 'operator', 'viewer'))
);
comment on column api_keys.key_hash is
  'SHA-256 of the whole key; keys are 256-bit random, so a fast hash suffices. The only lookup not scoped by organization: it is how a caller''s organization is found.';

create table tenants (
  organization_id uuid        not null,
  id              uuid        not null,
  entra_tenant_id uuid        not null,
  cloud           text        not null,
  display_name    text        not null,
  labels          jsonb       not null default '{}',
  create_time     timestamptz not null default now(),
  update_time     timestamptz not null default now(),
  version         bigint      not null default 1,
  constraint tenants_pk primary key (organization_id, id),
  constraint tenants_organization_id_fk foreign key (organization_id)
    references organizations (id) on delete restrict,
  constraint tenants_organization_id_entra_tenant_id_uq unique (organization_id, entra_tenant_id),
  constraint tenants_cloud_ck check (cloud in ('global', 'us-gov-gcc-high', 'us-gov-dod', 'china'))
);

create table integrations (
  organization_id             uuid        not null,
  tenant_id                   uuid        not null,
  id                          uuid        not null,
  kind                        text        not null,
  display_name                text        not null default '',
  features                    text[]      not null default '{}',
  management_mode             text        not null,
  client_id                   uuid        not null,
  application_object_id       uuid,
  service_principal_object_id uuid,
  sentinel_subscription_id    uuid,
  sentinel_resource_group     text,
  sentinel_workspace_name     text,
  sentinel_workspace_id       uuid,
  secret_path                 text        not null,
  secret_version              bigint      not null default 0,
  credential_key_id           uuid,
  credential_hint             text,
  credential_create_time      timestamptz,
  credential_expire_time      timestamptz,
  state                       text        not null default 'unverified',
  last_check_time             timestamptz,
  pending                     boolean     not null default true,
  create_time                 timestamptz not null default now(),
  update_time                 timestamptz not null default now(),
  version                     bigint      not null default 1,
  constraint integrations_pk primary key (organization_id, id),
  constraint integrations_tenant_fk foreign key (organization_id, tenant_id)
    references tenants (organization_id, id) on delete restrict,
  constraint integrations_organization_id_tenant_id_kind_client_id_uq
    unique (organization_id, tenant_id, kind, client_id),
  constraint integrations_kind_ck check (kind in ('microsoft-365-defender', 'microsoft-sentinel')),
  constraint integrations_management_mode_ck check (management_mode in ('customer-managed', 'provisioned')),
  constraint integrations_state_ck check (state in
    ('unverified', 'healthy', 'propagating', 'degraded', 'broken', 'blocked-by-policy')),
  constraint integrations_secret_path_uq unique (secret_path)
);
comment on column integrations.secret_path is 'Vault KV v2 path of the client secret (the value is only in Vault).';
comment on column integrations.secret_version is 'Vault version of the secret this row was last written with; 0 while pending.';
comment on column integrations.pending is
  'True from the first insert until the secret is stored in Vault; pending rows are invisible to the API and reaped when stale.';
create index integrations_pending_create_time_idx on integrations (create_time) where pending;
create index integrations_organization_id_state_idx on integrations (organization_id, state);

create table idempotency_keys (
  organization_id uuid        not null,
  method          text        not null,
  request_id      uuid        not null,
  request_hash    bytea       not null,
  resource_name   text        not null,
  create_time     timestamptz not null default now(),
  constraint idempotency_keys_pk primary key (organization_id, method, request_id)
);
comment on table idempotency_keys is
  'request_id of each create, with a hash of the request: a replay returns the first result; a different request under the same ID is refused. organization_id is the nil UUID for service-level creates.';

create table audit_events (
  organization_id uuid        not null,
  id              bigint      generated always as identity,
  actor           text        not null,
  method          text        not null,
  resource        text        not null,
  request_id      text        not null,
  create_time     timestamptz not null default now(),
  constraint audit_events_pk primary key (organization_id, id)
);
comment on table audit_events is 'One row per committed write; kept after the organization is deleted.';

create table secret_destructions (
  id              bigint      generated always as identity,
  organization_id uuid        not null,
  secret_path     text        not null,
  attempts        integer     not null default 0,
  last_error      text        not null default '',
  create_time     timestamptz not null default now(),
  constraint secret_destructions_pk primary key (id)
);
comment on table secret_destructions is
  'Outbox: Vault paths to destroy, written in the same transaction that deletes the row pointing at them, so a crash cannot leave a secret behind.';

-- +goose Down
drop table secret_destructions;
drop table audit_events;
drop table idempotency_keys;
drop table integrations;
drop table tenants;
drop table api_keys;
drop table organizations;
