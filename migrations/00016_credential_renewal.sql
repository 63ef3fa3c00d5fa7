-- Automatic credential renewal (issue 9 item 2, docs/credentials.md
-- "Automatic renewal").
--
-- The renewal job (renew_credentials, internal/provision/renew.go) starts a
-- rotation for an active credential of a provisioned integration whose
-- remaining lifetime fell below the organization's threshold, and reads
-- the credential's expiry date from Entra while it is at it.

-- +goose Up
alter table organizations add column credential_renewal_threshold_seconds bigint not null default 2592000;
-- An overlap set (in SQL) at or above the default threshold keeps the rule
-- below: the threshold becomes a day more than the overlap.
update organizations set credential_renewal_threshold_seconds = least(credential_overlap_seconds + 86400, 15552000)
  where credential_overlap_seconds >= 2592000;
alter table organizations add constraint organizations_credential_renewal_threshold_seconds_ck
  check (credential_renewal_threshold_seconds between 86400 and 15552000
    and credential_renewal_threshold_seconds > credential_overlap_seconds);
comment on column organizations.credential_renewal_threshold_seconds is
  'Automatic renewal starts a rotation when an active credential has less than this left (default 30 days, 1 to 180 days, more than the overlap).';

alter table credentials add column renewal_not_before timestamptz;
comment on column credentials.renewal_not_before is
  'Automatic renewal leaves the credential alone until then: set when it started a rotation for it (or could not), so a failed rotation is not restarted before a day has passed.';
alter table credentials add column expiry_read_time timestamptz;
comment on column credentials.expiry_read_time is
  'When the renewal job last read the credential''s endDateTime from Entra (null: never).';
create index credentials_active_end_time_idx on credentials (end_time) where state = 'active';

-- +goose Down
drop index credentials_active_end_time_idx;
alter table credentials drop column expiry_read_time;
alter table credentials drop column renewal_not_before;
alter table organizations drop constraint organizations_credential_renewal_threshold_seconds_ck;
alter table organizations drop column credential_renewal_threshold_seconds;
