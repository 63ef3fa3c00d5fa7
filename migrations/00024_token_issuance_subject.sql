-- Access-token issuance counters per caller, workload identities included
-- (issue 11 item 4): an OIDC subject or a client-certificate identity has
-- no API key, so every such caller of an organization was counted in one
-- row under the nil key, with the service admin's audit actor. subject
-- names the workload identity (auth.Principal.Subject) and is part of the
-- key.

-- +goose Up
alter table token_issuances add column subject text not null default '';
alter table token_issuances drop constraint token_issuances_pk;
alter table token_issuances add constraint token_issuances_pk
  primary key (organization_id, window_start, api_key_id, subject, integration_id, api);
comment on column token_issuances.subject is
  'The caller''s workload identity (oidc:<issuer>#<sub> or cert:<identity>; api_key_id is then the nil UUID); empty for API keys and the service admin.';

-- +goose Down
-- Workload identities' counts fold into one row per organization, window,
-- integration and API again.
create temporary table token_issuances_folded on commit drop as
  select organization_id, window_start, api_key_id, integration_id, api,
         sum(issued)::bigint as issued, sum(fetched)::bigint as fetched,
         min(create_time) as create_time, max(update_time) as update_time
  from token_issuances group by organization_id, window_start, api_key_id, integration_id, api;
delete from token_issuances;
alter table token_issuances drop constraint token_issuances_pk;
alter table token_issuances drop column subject;
alter table token_issuances add constraint token_issuances_pk
  primary key (organization_id, window_start, api_key_id, integration_id, api);
insert into token_issuances (organization_id, window_start, api_key_id, integration_id, api, issued, fetched, create_time, update_time)
  select organization_id, window_start, api_key_id, integration_id, api, issued, fetched, create_time, update_time from token_issuances_folded;
