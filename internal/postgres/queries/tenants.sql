-- name: InsertTenant :one
insert into tenants (organization_id, id, entra_tenant_id, cloud, display_name, labels)
values (@organization_id, @id, @entra_tenant_id, @cloud, @display_name, @labels)
returning *;

-- name: GetTenant :one
select * from tenants where organization_id = @organization_id and id = @id;

-- name: GetTenantForUpdate :one
select * from tenants where organization_id = @organization_id and id = @id for update;

-- name: LockTenantShared :one
-- Keeps the tenant from being deleted until the transaction ends.
select version from tenants where organization_id = @organization_id and id = @id for share;

-- name: ListTenants :many
select * from tenants where organization_id = @organization_id and id > @after order by id limit @lim;

-- name: UpdateTenant :one
update tenants set display_name = @display_name, labels = @labels, update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id
returning *;

-- name: DeleteTenant :execrows
delete from tenants where organization_id = @organization_id and id = @id;

-- name: LockOrganizationShared :one
-- Keeps the organization from being deleted until the transaction ends.
select version from organizations where id = @id for share;
