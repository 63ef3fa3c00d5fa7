-- Shared mode (issue 8 item 12): an organization registers its own
-- multi-tenant integration application per kind in its home tenant (client
-- ID here, its secret only in Vault, one path per shared application). Each
-- customer tenant consents it once (admin-consent link, state bound to the
-- tenant and the shared application); an integration in management mode
-- 'shared' then uses the shared application's credential in that tenant and
-- has no credential of its own.

-- +goose Up
create table shared_applications (
  organization_id uuid        not null,
  kind            text        not null,
  client_id       uuid        not null,
  display_name    text        not null default '',
  features        text[]      not null default '{}',
  secret_path     text        not null,
  secret_version  bigint      not null default 0,
  secret_end_time timestamptz,
  create_time     timestamptz not null default now(),
  update_time     timestamptz not null default now(),
  version         bigint      not null default 1,
  constraint shared_applications_pk primary key (organization_id, kind),
  constraint shared_applications_organization_fk foreign key (organization_id)
    references organizations (id) on delete cascade,
  constraint shared_applications_kind_ck check (kind in ('microsoft-365-defender', 'microsoft-sentinel')),
  constraint shared_applications_secret_path_uq unique (secret_path)
);
comment on table shared_applications is
  'An organization''s own multi-tenant integration application, one per kind (shared mode). Its client secret is only in Vault.';
comment on column shared_applications.secret_path is
  'Vault KV v2 path of the shared application''s client secret. Recorded before the first Vault write, so a deleted row or organization never leaves the secret behind.';
comment on column shared_applications.secret_version is
  'Vault version of the secret paired with client_id; 0 until the first write finished (the row is invisible through the API until then).';
comment on column shared_applications.features is
  'The optional features the application''s requiredResourceAccess covers (Defender); its shared integrations have these features.';

create table shared_application_consents (
  organization_id uuid        not null,
  tenant_id       uuid        not null,
  kind            text        not null,
  client_id       uuid        not null,
  consent_time    timestamptz not null,
  constraint shared_application_consents_pk primary key (organization_id, tenant_id, kind),
  constraint shared_application_consents_tenant_fk foreign key (organization_id, tenant_id)
    references tenants (organization_id, id) on delete cascade,
  constraint shared_application_consents_application_fk foreign key (organization_id, kind)
    references shared_applications (organization_id, kind) on delete cascade
);
comment on table shared_application_consents is
  'A customer tenant''s admin consent of the organization''s shared application of a kind (CompleteAdminConsent of a link issued for it).';
comment on column shared_application_consents.client_id is 'The shared application''s client ID the consent was given to.';

create table shared_integrations (
  organization_id uuid not null,
  integration_id  uuid not null,
  kind            text not null,
  constraint shared_integrations_pk primary key (organization_id, integration_id),
  constraint shared_integrations_integration_fk foreign key (organization_id, integration_id)
    references integrations (organization_id, id) on delete cascade,
  constraint shared_integrations_application_fk foreign key (organization_id, kind)
    references shared_applications (organization_id, kind) on delete restrict
);
comment on table shared_integrations is
  'Which shared application an integration in management mode shared uses; keeps the application from being deleted while integrations use it.';
create index shared_integrations_kind_idx on shared_integrations (organization_id, kind);

alter table admin_consent_requests add column shared_kind text;
alter table admin_consent_requests add constraint admin_consent_requests_shared_application_fk
  foreign key (organization_id, shared_kind) references shared_applications (organization_id, kind) on delete cascade;
comment on column admin_consent_requests.shared_kind is
  'Null: the link consents the organization''s provisioner. Otherwise the kind of the shared application the link consents.';

alter table integrations drop constraint integrations_management_mode_ck;
alter table integrations add constraint integrations_management_mode_ck
  check (management_mode in ('customer-managed', 'provisioned', 'shared'));

-- +goose Down
delete from integrations where management_mode = 'shared';
alter table integrations drop constraint integrations_management_mode_ck;
alter table integrations add constraint integrations_management_mode_ck
  check (management_mode in ('customer-managed', 'provisioned'));
delete from admin_consent_requests where shared_kind is not null;
alter table admin_consent_requests drop constraint admin_consent_requests_shared_application_fk;
alter table admin_consent_requests drop column shared_kind;
drop table shared_integrations;
drop table shared_application_consents;
drop table shared_applications;
