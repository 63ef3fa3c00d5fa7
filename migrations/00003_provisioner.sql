-- Provisioner: the organization's multi-tenant "provisioner" application
-- (client ID here, its secret only in Vault), the admin consent each
-- customer tenant gives it, and the single-use states of the admin-consent
-- links handed out.

-- +goose Up
alter table organizations add column provisioner_client_id uuid;
alter table organizations add column provisioner_secret_path text;
alter table organizations add column provisioner_secret_version bigint;
alter table organizations add constraint organizations_provisioner_secret_path_uq unique (provisioner_secret_path);
comment on column organizations.provisioner_client_id is
  'Client ID of the organization''s multi-tenant provisioner application; null until SetOrganizationProvisioner.';
comment on column organizations.provisioner_secret_path is
  'Vault KV v2 path of the provisioner''s client secret (the value is only in Vault). Recorded before the first Vault write, so a deleted organization never leaves the secret behind.';
comment on column organizations.provisioner_secret_version is
  'Vault version of the provisioner secret paired with provisioner_client_id; null until the first write finished.';

alter table tenants add column provisioner_consent_time timestamptz;
comment on column tenants.provisioner_consent_time is
  'When a tenant administrator last consented the organization''s provisioner application (CompleteAdminConsent).';

create table admin_consent_requests (
  organization_id uuid        not null,
  tenant_id       uuid        not null,
  state_hash      bytea       not null,
  redirect_uri    text        not null,
  create_time     timestamptz not null default now(),
  expire_time     timestamptz not null,
  used_time       timestamptz,
  result          text,
  constraint admin_consent_requests_pk primary key (organization_id, state_hash),
  constraint admin_consent_requests_tenant_fk foreign key (organization_id, tenant_id)
    references tenants (organization_id, id) on delete cascade,
  constraint admin_consent_requests_state_hash_ck check (octet_length(state_hash) = 32),
  constraint admin_consent_requests_result_ck check (result in ('consented', 'declined', 'tenant-mismatch')),
  constraint admin_consent_requests_used_time_result_ck check ((used_time is null) = (result is null))
);
comment on table admin_consent_requests is
  'One row per admin-consent link handed out (GetAdminConsentLink): binds the link''s state to the tenant it was issued for. Completion (CompleteAdminConsent) finds the tenant by the state, never by the tenant Microsoft returns.';
comment on column admin_consent_requests.state_hash is
  'SHA-256 of the state (256 random bits, base64url); the state itself is never stored.';
comment on column admin_consent_requests.used_time is 'When the state was consumed; a state is used at most once.';
comment on column admin_consent_requests.result is
  'Outcome recorded when the state was used: consented, declined (Microsoft returned an error) or tenant-mismatch.';
create index admin_consent_requests_tenant_idx on admin_consent_requests (organization_id, tenant_id);

-- +goose Down
drop table admin_consent_requests;
alter table tenants drop column provisioner_consent_time;
alter table organizations drop constraint organizations_provisioner_secret_path_uq;
alter table organizations drop column provisioner_secret_version;
alter table organizations drop column provisioner_secret_path;
alter table organizations drop column provisioner_client_id;
