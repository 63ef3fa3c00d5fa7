-- Admin consent details (issue 10 item 5, docs/provisioner.md): the scope
-- Microsoft's admin-consent redirect returns is recorded with the consent
-- request it completes. (The redirect URI was recorded from the start, in
-- redirect_uri; completion now requires the same one.)

-- +goose Up
alter table admin_consent_requests add column scope text;
alter table admin_consent_requests add constraint admin_consent_requests_scope_ck
  check (scope is null or (used_time is not null and octet_length(scope) <= 4096));
comment on column admin_consent_requests.scope is
  'The scope parameter of Microsoft''s admin-consent redirect (what it says was consented), recorded when the request was completed; null before, or when the redirect carried none.';

-- +goose Down
alter table admin_consent_requests drop constraint admin_consent_requests_scope_ck;
alter table admin_consent_requests drop column scope;
