-- Credential rotation (docs/credentials.md).

-- name: InsertStoredPendingCredential :one
-- A rotation's new credential: its secret is stored (secret_version), it
-- is not yet verified, so not yet active.
insert into credentials (organization_id, integration_id, id, type, key_id, hint, start_time, end_time,
  secret_path, secret_version, source, state)
values (@organization_id, @integration_id, @id, @type, @key_id, @hint, @start_time, @end_time,
  @secret_path, @secret_version, @source, 'pending')
returning *;

-- name: RetireCredential :one
-- An active or pending credential is replaced (or abandoned): it keeps
-- working until overlap_end_time, then the retirer removes it.
update credentials set state = 'retiring', overlap_end_time = @overlap_end_time, update_time = now()
where organization_id = @organization_id and id = @id and state in ('active', 'pending')
returning *;

-- name: GetCredentialForUpdate :one
select * from credentials where organization_id = @organization_id and id = @id for update;

-- name: GetCredentialOverlap :one
select credential_overlap_seconds from organizations where id = @organization_id;

-- name: SetCredentialOverlap :one
update organizations set credential_overlap_seconds = @credential_overlap_seconds, update_time = now(), version = version + 1
where id = @organization_id
returning credential_overlap_seconds;
