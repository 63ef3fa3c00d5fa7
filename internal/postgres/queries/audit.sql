-- name: ListAuditEvents :many
-- Newest first.
select * from audit_events
where organization_id = @organization_id and id < @before and (@resource::text = '' or resource = @resource::text)
order by id desc limit @lim;
