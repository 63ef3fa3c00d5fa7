-- name: RecordProvisionerPath :one
-- Bookkeeping invisible through the API: no version bump.
update organizations set provisioner_secret_path = coalesce(provisioner_secret_path, @path::text)
where id = @id returning *;

-- name: SetOrganizationProvisioner :one
update organizations set provisioner_client_id = @client_id, provisioner_secret_version = @secret_version,
  update_time = now(), version = version + 1
where id = @id returning *;

-- name: SetTenantConsentTime :one
update tenants set provisioner_consent_time = sqlc.narg(consent_time), update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id
returning *;

-- name: ListConsentedTenants :many
select id from tenants where organization_id = @organization_id and provisioner_consent_time is not null order by id;

-- name: DeleteUnusedConsentRequests :exec
delete from admin_consent_requests where organization_id = @organization_id and used_time is null;

-- name: DeleteExpiredConsentRequests :exec
delete from admin_consent_requests where organization_id = @organization_id and tenant_id = @tenant_id
  and used_time is null and expire_time < @before;

-- name: InsertConsentRequest :exec
insert into admin_consent_requests (organization_id, tenant_id, state_hash, redirect_uri, create_time, expire_time)
values (@organization_id, @tenant_id, @state_hash, @redirect_uri, @create_time, @expire_time);

-- name: GetConsentRequestForUpdate :one
select * from admin_consent_requests where organization_id = @organization_id and state_hash = @state_hash for update;

-- name: MarkConsentRequestUsed :exec
update admin_consent_requests set used_time = now(), result = @result
where organization_id = @organization_id and state_hash = @state_hash;
