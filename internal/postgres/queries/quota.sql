-- name: LockQuota :exec
-- Serializes the creates counted against one organization's quota of one
-- resource until the transaction ends (internal/quota).
select pg_advisory_xact_lock(hashtextextended(@key::text, 0));

-- name: CountTenants :one
select count(*) from tenants where organization_id = @organization_id;

-- name: CountIntegrations :one
select count(*) from integrations where organization_id = @organization_id;

-- name: CountAPIKeys :one
select count(*) from api_keys where organization_id = @organization_id;

-- name: CountOutstandingConsentLinks :one
select count(*) from admin_consent_requests
where organization_id = @organization_id and used_time is null and expire_time > now();
