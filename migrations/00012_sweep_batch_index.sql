-- The sweep's tenant batches (issue 7 item 8) list one tenant's due
-- integrations a page at a time (ListDueCheckTargets): without this index
-- each page scanned every integration of the organization (about 10 ms a
-- page for 2,000 integrations, growing with the fleet); with it, a page
-- reads the tenant's rows in ID order.

-- +goose Up
create index integrations_organization_id_tenant_id_id_idx on integrations (organization_id, tenant_id, id)
  where not pending;

-- +goose Down
drop index integrations_organization_id_tenant_id_id_idx;
