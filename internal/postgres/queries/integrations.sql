-- name: InsertIntegration :one
-- A new integration starts pending: invisible until its first credential's
-- secret is stored.
insert into integrations (organization_id, tenant_id, id, kind, display_name, features, management_mode, client_id,
  application_object_id, service_principal_object_id,
  sentinel_subscription_id, sentinel_resource_group, sentinel_workspace_name, sentinel_workspace_id, state, pending)
values (@organization_id, @tenant_id, @id, @kind, @display_name, @features, @management_mode, @client_id,
  @application_object_id, @service_principal_object_id,
  @sentinel_subscription_id, @sentinel_resource_group, @sentinel_workspace_name, @sentinel_workspace_id, @state, true)
returning *;

-- name: GetIntegration :one
select * from integrations where organization_id = @organization_id and id = @id and not pending;

-- name: GetIntegrationIncludingPending :one
select * from integrations where organization_id = @organization_id and id = @id;

-- name: GetIntegrationForUpdate :one
select * from integrations where organization_id = @organization_id and id = @id and not pending for update;

-- name: ListIntegrations :many
-- expire_before keeps integrations whose active credential ends before it.
select * from integrations i
where i.organization_id = @organization_id and not i.pending and i.id > @after
  and (sqlc.narg(tenant_id)::uuid is null or i.tenant_id = sqlc.narg(tenant_id)::uuid)
  and (@kind::text = '' or i.kind = @kind::text)
  and (@state::text = '' or i.state = @state::text)
  and (sqlc.narg(expire_before)::timestamptz is null or exists (
    select 1 from credentials c
    where c.organization_id = i.organization_id and c.integration_id = i.id and c.state = 'active'
      and c.end_time < sqlc.narg(expire_before)::timestamptz))
order by i.id limit @lim;

-- name: UpdateIntegration :one
-- Writes the mutable settings and the state, and bumps the version (etag).
update integrations set
  display_name = @display_name, features = @features, client_id = @client_id,
  application_object_id = @application_object_id, service_principal_object_id = @service_principal_object_id,
  sentinel_subscription_id = @sentinel_subscription_id, sentinel_resource_group = @sentinel_resource_group,
  sentinel_workspace_name = @sentinel_workspace_name, sentinel_workspace_id = @sentinel_workspace_id,
  state = @state, update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id
returning *;

-- name: SetProvisionedObjects :execrows
-- What a provisioning step made in Entra or Azure, in one statement: each
-- given column (null: unchanged), the version bumped. No read first: the
-- other columns are not touched.
update integrations set
  client_id = coalesce(sqlc.narg(client_id)::uuid, client_id),
  application_object_id = coalesce(sqlc.narg(application_object_id)::uuid, application_object_id),
  service_principal_object_id = coalesce(sqlc.narg(service_principal_object_id)::uuid, service_principal_object_id),
  sentinel_subscription_id = coalesce(sqlc.narg(sentinel_subscription_id)::uuid, sentinel_subscription_id),
  sentinel_resource_group = coalesce(sqlc.narg(sentinel_resource_group)::text, sentinel_resource_group),
  sentinel_workspace_name = coalesce(sqlc.narg(sentinel_workspace_name)::text, sentinel_workspace_name),
  sentinel_workspace_id = coalesce(sqlc.narg(sentinel_workspace_id)::uuid, sentinel_workspace_id),
  update_time = now(), version = version + 1
where organization_id = @organization_id and id = @id;

-- name: MakeIntegrationVisible :one
update integrations set pending = false, update_time = now()
where organization_id = @organization_id and id = @id and pending
returning *;

-- name: DeleteIntegration :execrows
delete from integrations where organization_id = @organization_id and id = @id;

-- name: DeletePendingIntegrations :many
-- Background work for every organization: stale creates that never finished.
delete from integrations where pending and create_time < @cutoff
returning organization_id, tenant_id, id;

-- name: DeleteRequestKeysFor :exec
delete from idempotency_keys where organization_id = @organization_id and resource_name = @resource_name;

-- name: InsertCredential :one
insert into credentials (organization_id, integration_id, id, type, key_id, hint, start_time, end_time,
  secret_path, source, state)
values (@organization_id, @integration_id, @id, @type, @key_id, @hint, @start_time, @end_time,
  @secret_path, @source, 'pending')
returning *;

-- name: ListCredentials :many
-- The credentials of several integrations of one organization, oldest first.
select * from credentials
where organization_id = @organization_id and integration_id = any(@integration_ids::uuid[])
order by integration_id, create_time, id;

-- name: ActivateCredential :one
-- A pending credential whose secret is stored becomes the active one.
update credentials set state = 'active', secret_version = @secret_version, update_time = now()
where organization_id = @organization_id and id = @id and state = 'pending'
returning *;

-- name: SetCredentialState :one
update credentials set state = @state, update_time = now()
where organization_id = @organization_id and id = @id
returning *;

-- name: UpdateCredentialMetadata :one
update credentials set key_id = @key_id, hint = @hint, start_time = @start_time, end_time = @end_time,
  expiry_warned_time = @expiry_warned_time, update_time = now()
where organization_id = @organization_id and id = @id
returning *;

-- name: DeleteCredential :execrows
delete from credentials where organization_id = @organization_id and id = @id;

-- name: ListStalePendingCredentials :many
-- Background work for every organization: credentials whose secret was
-- never recorded as stored, created before cutoff. Locked so that two
-- reapers do not both queue them.
select * from credentials where state = 'pending' and secret_version = 0 and create_time < @cutoff
order by create_time for update skip locked;
