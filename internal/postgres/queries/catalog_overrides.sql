-- name: GetPermissionCatalogOverride :one
select * from permission_catalog_overrides where organization_id = @organization_id;

-- name: PutPermissionCatalogOverride :one
-- Writes the override at @revision, only if the stored one is at
-- @revision - 1 (none stored: revision 0): no row returned means another
-- update came first (the caller's etag is stale).
insert into permission_catalog_overrides as o (organization_id, entries, revision)
values (@organization_id, @entries, @revision)
on conflict (organization_id) do update set entries = excluded.entries, revision = excluded.revision, update_time = now()
where o.revision = excluded.revision - 1
returning *;
