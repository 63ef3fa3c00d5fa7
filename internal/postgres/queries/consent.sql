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
delete from admin_consent_requests where organization_id = @organization_id and used_time is null and shared_kind is null;

-- name: DeleteExpiredConsentRequests :exec
delete from admin_consent_requests where organization_id = @organization_id and tenant_id = @tenant_id
  and used_time is null and expire_time < @before;

-- name: InsertConsentRequest :exec
insert into admin_consent_requests (organization_id, tenant_id, state_hash, redirect_uri, create_time, expire_time, shared_kind)
values (@organization_id, @tenant_id, @state_hash, @redirect_uri, @create_time, @expire_time, sqlc.narg(shared_kind));

-- name: GetConsentRequestForUpdate :one
select * from admin_consent_requests where organization_id = @organization_id and state_hash = @state_hash for update;

-- name: MarkConsentRequestUsed :exec
update admin_consent_requests set used_time = now(), result = @result, scope = sqlc.narg(scope)
where organization_id = @organization_id and state_hash = @state_hash;

-- name: RecordSharedConsent :execrows
-- The tenant's consent of the organization's shared application of a kind,
-- paired with that application's client ID.
insert into shared_application_consents (organization_id, tenant_id, kind, client_id, consent_time)
select a.organization_id, @tenant_id, a.kind, a.client_id, @consent_time
from shared_applications a where a.organization_id = @organization_id and a.kind = @kind
on conflict (organization_id, tenant_id, kind) do update set client_id = excluded.client_id, consent_time = excluded.consent_time;
