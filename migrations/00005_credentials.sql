-- Credentials as their own rows: an integration has zero or more
-- credentials (a client secret today, a certificate next), each with its
-- own Entra metadata, Vault path and version, source and lifecycle state.
-- The integration's former credential_* columns, secret_path/secret_version
-- and expiry_warned_time move here; nothing reads them afterwards.
--
-- Rotation's overlap: at most one credential per integration is active (the
-- one checks and tokens use). A new one is pending until its secret is
-- stored (later: until verified); the one it replaces turns retiring and
-- stays in Vault for the overlap, then removed (its secret destroyed).

-- +goose Up
create table credentials (
  organization_id    uuid        not null,
  integration_id     uuid        not null,
  id                 uuid        not null,
  type               text        not null default 'client_secret',
  key_id             uuid,
  hint               text,
  start_time         timestamptz,
  end_time           timestamptz,
  secret_path        text        not null,
  secret_version     bigint      not null default 0,
  source             text        not null,
  state              text        not null default 'pending',
  expiry_warned_time timestamptz,
  create_time        timestamptz not null default now(),
  update_time        timestamptz not null default now(),
  constraint credentials_pk primary key (organization_id, id),
  constraint credentials_integration_fk foreign key (organization_id, integration_id)
    references integrations (organization_id, id) on delete cascade,
  constraint credentials_type_ck check (type in ('client_secret', 'certificate')),
  constraint credentials_source_ck check (source in ('customer', 'provisioned')),
  constraint credentials_state_ck check (state in ('pending', 'active', 'retiring', 'removed')),
  constraint credentials_secret_version_ck check (state = 'pending' or secret_version > 0),
  constraint credentials_secret_path_uq unique (secret_path)
);
comment on table credentials is
  'Client secrets and certificates of an integration: metadata only, the values are in Vault. Several live at once during a rotation''s overlap.';
comment on column credentials.key_id is 'Entra key ID of the password or key credential, when known.';
comment on column credentials.hint is 'The first characters Entra shows for a client secret, when known (never more than 3).';
comment on column credentials.start_time is 'When the credential becomes valid in Entra, when known.';
comment on column credentials.end_time is 'When the credential expires in Entra, when known; the expiry warning and the expire_before filter read it.';
comment on column credentials.secret_path is
  'Vault KV v2 path of this credential''s value, one path per credential so it can be destroyed alone (rows moved from integrations keep their old path).';
comment on column credentials.secret_version is 'Vault version of the value; 0 until the value is stored.';
comment on column credentials.source is 'customer: made by the customer admin and handed over; provisioned: made by dzconnect through Graph.';
comment on column credentials.state is
  'pending: value not yet stored (or not yet verified); active: the one in use (at most one per integration); retiring: replaced, kept for the overlap; removed: value destroyed, row kept as history.';
comment on column credentials.expiry_warned_time is
  'When the credential-expiring event was announced for this credential (once per credential); cleared when end_time changes.';
create unique index credentials_organization_id_integration_id_active_uq
  on credentials (organization_id, integration_id) where state = 'active';
create index credentials_organization_id_integration_id_idx on credentials (organization_id, integration_id);
create index credentials_organization_id_end_time_idx on credentials (organization_id, end_time) where state = 'active';
create index credentials_pending_create_time_idx on credentials (create_time) where state = 'pending';

-- Each integration's credential becomes one row (a UUIDv7 from its
-- creation time): active for visible integrations, pending for those whose
-- create has not finished.
insert into credentials (organization_id, integration_id, id, type, key_id, hint, end_time, secret_path, secret_version,
  source, state, expiry_warned_time, create_time, update_time)
select i.organization_id, i.id,
  encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
      placing substring(int8send(floor(extract(epoch from coalesce(i.credential_create_time, i.create_time)) * 1000)::bigint) from 3)
      from 1 for 6), 52, 1), 53, 1), 'hex')::uuid,
  'client_secret', i.credential_key_id, i.credential_hint, i.credential_expire_time, i.secret_path,
  case when i.pending then 0 else i.secret_version end,
  case i.management_mode when 'provisioned' then 'provisioned' else 'customer' end,
  case when i.pending then 'pending' else 'active' end,
  i.expiry_warned_time, coalesce(i.credential_create_time, i.create_time), i.update_time
from integrations i;

alter table integrations drop column secret_path;
alter table integrations drop column secret_version;
alter table integrations drop column credential_key_id;
alter table integrations drop column credential_hint;
alter table integrations drop column credential_create_time;
alter table integrations drop column credential_expire_time;
alter table integrations drop column expiry_warned_time;
comment on column integrations.pending is
  'True from the first insert until its first credential''s secret is stored in Vault; pending rows are invisible to the API and reaped when stale.';

-- +goose Down
alter table integrations add column secret_path text;
alter table integrations add column secret_version bigint not null default 0;
alter table integrations add column credential_key_id uuid;
alter table integrations add column credential_hint text;
alter table integrations add column credential_create_time timestamptz;
alter table integrations add column credential_expire_time timestamptz;
alter table integrations add column expiry_warned_time timestamptz;
-- The active credential, else the newest one, goes back into its integration.
update integrations i set secret_path = c.secret_path, secret_version = c.secret_version,
  credential_key_id = c.key_id, credential_hint = c.hint,
  credential_create_time = case when c.state = 'pending' then null else c.create_time end,
  credential_expire_time = c.end_time, expiry_warned_time = c.expiry_warned_time
from (select distinct on (organization_id, integration_id) * from credentials
      order by organization_id, integration_id, state = 'active' desc, create_time desc, id desc) c
where c.organization_id = i.organization_id and c.integration_id = i.id;
update integrations set secret_path = 'organizations/' || organization_id || '/integrations/' || id || '/client-secret'
where secret_path is null;
alter table integrations alter column secret_path set not null;
alter table integrations add constraint integrations_secret_path_uq unique (secret_path);
comment on column integrations.secret_path is 'Vault KV v2 path of the client secret (the value is only in Vault).';
comment on column integrations.secret_version is 'Vault version of the secret this row was last written with; 0 while pending.';
comment on column integrations.expiry_warned_time is 'When the credential-expiring event was last announced; cleared when the credential changes.';
comment on column integrations.pending is
  'True from the first insert until the secret is stored in Vault; pending rows are invisible to the API and reaped when stale.';
create index integrations_credential_expire_time_idx on integrations (organization_id, credential_expire_time) where not pending;
drop table credentials;
