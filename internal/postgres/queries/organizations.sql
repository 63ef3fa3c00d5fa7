-- name: InsertOrganization :one
insert into organizations (id, display_name) values (@id, @display_name) returning *;

-- name: GetOrganization :one
select * from organizations where id = @id;

-- name: GetOrganizationForUpdate :one
select * from organizations where id = @id for update;

-- name: ListOrganizations :many
select * from organizations where id > @after order by id limit @lim;

-- name: UpdateOrganization :one
update organizations set display_name = @display_name,
  credential_overlap_seconds = @credential_overlap_seconds,
  credential_renewal_threshold_seconds = @credential_renewal_threshold_seconds,
  update_time = now(), version = version + 1
where id = @id returning *;

-- name: DeleteOrganization :execrows
-- Its API keys, webhooks (and their deliveries) go with it (cascade).
delete from organizations where id = @id;

-- name: DeleteOrganizationRequestKeys :exec
delete from idempotency_keys where organization_id = @organization_id;
