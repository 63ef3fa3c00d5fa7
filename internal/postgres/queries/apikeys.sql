-- name: InsertAPIKey :one
insert into api_keys (organization_id, id, display_name, role, key_prefix, key_hash, expire_time)
values (@organization_id, @id, @display_name, @role, @key_prefix, @key_hash, @expire_time)
returning *;

-- name: GetAPIKey :one
select * from api_keys where organization_id = @organization_id and id = @id;

-- name: GetAPIKeyForUpdate :one
select * from api_keys where organization_id = @organization_id and id = @id for update;

-- name: ListAPIKeys :many
select * from api_keys where organization_id = @organization_id and id > @after order by id limit @lim;

-- name: UpdateAPIKey :one
update api_keys set display_name = @display_name, update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id
returning *;

-- name: DeleteAPIKey :execrows
delete from api_keys where organization_id = @organization_id and id = @id;

-- name: LookupAPIKey :one
-- The one query across organizations: it is how the caller's organization is learnt.
select * from api_keys where key_hash = @key_hash;

-- name: ListenAPIKeys :exec
-- Subscribes the session to the api_keys trigger's notifications
-- (migrations/00025_api_key_invalidation.sql).
listen dzconnect_api_keys;
