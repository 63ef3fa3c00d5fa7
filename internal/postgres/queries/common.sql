-- name: InsertRequestKey :execrows
-- Records a create's request_id; 0 rows when it was used before.
insert into idempotency_keys (organization_id, method, request_id, request_hash, resource_name)
values (@organization_id, @method, @request_id, @request_hash, @resource_name)
on conflict on constraint idempotency_keys_pk do nothing;

-- name: GetRequestKey :one
select request_hash, resource_name from idempotency_keys
where organization_id = @organization_id and method = @method and request_id = @request_id;

-- name: AppendAudit :exec
insert into audit_events (organization_id, actor, method, resource, request_id)
values (@organization_id, @actor, @method, @resource, @request_id);
