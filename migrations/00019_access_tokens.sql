-- Tokens instead of secrets (issue 9 items 5 and 7, docs/credentials.md
-- "Tokens instead of secrets").
--
-- The consumer role: keys that may only issue access tokens and
-- acknowledge credentials. Access tokens themselves are never stored:
-- token_issuances counts them per API key, integration, API and hour
-- (written in batches from each replica's in-memory counters), and
-- credential_consumers records which credential each platform that reads
-- an integration's secret says it uses.

-- +goose Up
alter table api_keys drop constraint api_keys_role_ck;
alter table api_keys add constraint api_keys_role_ck check (role in ('admin', 'operator', 'viewer', 'consumer'));

create table token_issuances (
  organization_id uuid        not null,
  api_key_id      uuid        not null,
  integration_id  uuid        not null,
  api             text        not null,
  window_start    timestamptz not null,
  issued          bigint      not null default 0,
  fetched         bigint      not null default 0,
  create_time     timestamptz not null default now(),
  update_time     timestamptz not null default now(),
  constraint token_issuances_pk primary key (organization_id, window_start, api_key_id, integration_id, api),
  constraint token_issuances_organization_id_fk foreign key (organization_id)
    references organizations (id) on delete cascade,
  constraint token_issuances_counts_ck check (issued >= 0 and fetched >= 0)
);
comment on table token_issuances is
  'Access tokens issued (IssueAccessToken) per API key, integration, API and hour; kept after the integration or key is deleted.';
comment on column token_issuances.api_key_id is
  'The caller''s API key; the nil UUID for the service admin.';
comment on column token_issuances.window_start is 'Start of the hour the issuances fall in (UTC).';
comment on column token_issuances.issued is 'Tokens handed out, from the cache or not.';
comment on column token_issuances.fetched is 'Of those, the ones dzconnect requested from Microsoft (cache misses and refreshes).';

create table credential_consumers (
  organization_id       uuid        not null,
  integration_id        uuid        not null,
  consumer              text        not null,
  credential_id         uuid        not null,
  acknowledge_time      timestamptz not null default now(),
  stale_announced_for   uuid,
  create_time           timestamptz not null default now(),
  constraint credential_consumers_pk primary key (organization_id, integration_id, consumer),
  constraint credential_consumers_integration_fk foreign key (organization_id, integration_id)
    references integrations (organization_id, id) on delete cascade,
  constraint credential_consumers_credential_fk foreign key (organization_id, credential_id)
    references credentials (organization_id, id) on delete cascade,
  constraint credential_consumers_consumer_ck check (consumer ~ '^[a-z][a-z0-9-]{0,62}$')
);
comment on table credential_consumers is
  'Platforms that read an integration''s secret themselves, registered by their first AcknowledgeCredential, with the credential they last said they use.';
comment on column credential_consumers.stale_announced_for is
  'The retiring credential this consumer was last announced as still using (credential.consumer_stale), so each is announced once.';

-- +goose Down
drop table credential_consumers;
drop table token_issuances;
delete from api_keys where role = 'consumer';
alter table api_keys drop constraint api_keys_role_ck;
alter table api_keys add constraint api_keys_role_ck check (role in ('admin', 'operator', 'viewer'));
