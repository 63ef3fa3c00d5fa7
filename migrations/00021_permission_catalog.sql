-- The permission catalog as data (issue 10 item 6, docs/verification.md,
-- "The permission catalog"): an organization's overrides of required and
-- optional on top of the catalog (the embedded default or --catalog-file),
-- and the catalog version each check judged with.

-- +goose Up
create table permission_catalog_overrides (
  organization_id uuid        not null,
  entries         jsonb       not null default '[]',
  revision        bigint      not null,
  create_time     timestamptz not null default now(),
  update_time     timestamptz not null default now(),
  constraint permission_catalog_overrides_pk primary key (organization_id),
  constraint permission_catalog_overrides_organization_fk foreign key (organization_id)
    references organizations (id) on delete cascade,
  constraint permission_catalog_overrides_entries_ck check (jsonb_typeof(entries) = 'array' and jsonb_array_length(entries) <= 100),
  constraint permission_catalog_overrides_revision_ck check (revision > 0)
);
comment on table permission_catalog_overrides is
  'An organization''s PermissionCatalogOverride (organizations/{o}/permissionCatalogOverride): at most one row; no row is an empty override at revision 0.';
comment on column permission_catalog_overrides.entries is
  'The overrides, [{kind, resource_app_id, value, requirement}], validated against the catalog when written (internal/catalog Override).';
comment on column permission_catalog_overrides.revision is
  'Incremented by every update: the etag, and the "+org.N" of the effective catalog version checks record.';

alter table checks add column catalog_version text;
comment on column checks.catalog_version is
  'The effective catalog version the check judged with (catalog version, plus "+org.N" for the organization''s override revision N); null for checks recorded before it was kept.';

-- +goose Down
alter table checks drop column catalog_version;
drop table permission_catalog_overrides;
