-- US Government GCC (moderate) as a tenant cloud (issue 10 item 4): global
-- sign-in and Graph, Defender for Endpoint's GCC API host
-- (internal/microsoft/config.go). NOTE: number 00023 was not reserved for
-- this work; the lead may renumber it when merging.

-- +goose Up
alter table tenants drop constraint tenants_cloud_ck;
alter table tenants add constraint tenants_cloud_ck
  check (cloud in ('global', 'us-gov-gcc', 'us-gov-gcc-high', 'us-gov-dod', 'china'));

-- +goose Down
-- GCC signs in at the global authority: the closest cloud the older schema knows.
update tenants set cloud = 'global' where cloud = 'us-gov-gcc';
alter table tenants drop constraint tenants_cloud_ck;
alter table tenants add constraint tenants_cloud_ck
  check (cloud in ('global', 'us-gov-gcc-high', 'us-gov-dod', 'china'));
