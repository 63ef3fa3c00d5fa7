-- name: InsertSharedApplication :one
-- A new shared application starts with secret_version 0: invisible through
-- the API until its secret is stored in Vault.
insert into shared_applications (organization_id, kind, client_id, display_name, features, secret_path, secret_end_time)
values (@organization_id, @kind, @client_id, @display_name, @features, @secret_path, sqlc.narg(secret_end_time))
returning *;

-- name: GetSharedApplication :one
select * from shared_applications where organization_id = @organization_id and kind = @kind;

-- name: GetSharedApplicationForUpdate :one
select * from shared_applications where organization_id = @organization_id and kind = @kind for update;

-- name: ListSharedApplications :many
select * from shared_applications where organization_id = @organization_id and secret_version > 0 order by kind;

-- name: SetSharedApplicationSecret :one
-- Pairs the row with a stored secret version and bumps its version.
update shared_applications set secret_version = @secret_version, secret_end_time = sqlc.narg(secret_end_time),
  update_time = now(), version = version + 1
where organization_id = @organization_id and kind = @kind
returning *;

-- name: DeleteSharedApplication :execrows
delete from shared_applications where organization_id = @organization_id and kind = @kind;

-- name: CountSharedIntegrations :one
select count(*) from shared_integrations where organization_id = @organization_id and kind = @kind;

-- name: InsertSharedIntegration :exec
insert into shared_integrations (organization_id, integration_id, kind) values (@organization_id, @integration_id, @kind);

-- name: GetSharedIntegrationApplication :one
-- The shared application an integration uses.
select a.* from shared_integrations s
join shared_applications a on a.organization_id = s.organization_id and a.kind = s.kind
where s.organization_id = @organization_id and s.integration_id = @integration_id;

-- name: GetSharedConsent :one
select * from shared_application_consents
where organization_id = @organization_id and tenant_id = @tenant_id and kind = @kind;

-- name: ListSharedSecretPaths :many
-- Every shared application's secret path of an organization (its deletion
-- destroys them).
select secret_path from shared_applications where organization_id = @organization_id order by kind;
