-- Credential rotation with overlap (issue 9 item 1, docs/credentials.md).
--
-- A rotation makes a new credential (pending until verified), then makes it
-- active and the one it replaces retiring until overlap_end_time; the
-- retirer removes a retiring credential from Entra once that time has
-- passed, queues its Vault value's destruction and marks it removed.
--
-- Credential changes on one application are serialized by a rule here: at
-- most one unfinished credential-changing operation (provision, deprovision,
-- rotate) per target integration.

-- +goose Up
alter table organizations add column credential_overlap_seconds bigint not null default 604800;
alter table organizations add constraint organizations_credential_overlap_seconds_ck
  check (credential_overlap_seconds between 0 and 7776000);
comment on column organizations.credential_overlap_seconds is
  'How long a replaced credential keeps working after a rotation (default 7 days, at most 90).';

alter table credentials add column overlap_end_time timestamptz;
comment on column credentials.overlap_end_time is
  'retiring after a rotation: when the overlap ends and the retirer removes the credential from Entra and destroys its Vault value (null: a customer-managed credential kept as a fallback, no scheduled removal).';
create index credentials_overlap_end_time_idx on credentials (overlap_end_time) where state = 'retiring';

create unique index operations_organization_id_target_credential_change_uq
  on operations (organization_id, target)
  where kind in ('provision', 'deprovision', 'rotate') and state in ('pending', 'running') and target <> '';

-- +goose Down
drop index operations_organization_id_target_credential_change_uq;
drop index credentials_overlap_end_time_idx;
alter table credentials drop column overlap_end_time;
alter table organizations drop constraint organizations_credential_overlap_seconds_ck;
alter table organizations drop column credential_overlap_seconds;
