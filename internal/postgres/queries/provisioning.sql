-- name: GetProvisionGeneration :many
-- The uniqueName generation; no row means 1.
select generation from provision_generations
where organization_id = @organization_id and entra_tenant_id = @entra_tenant_id and kind = @kind;

-- name: BumpProvisionGeneration :one
-- Sets the generation to next unless it is already higher (never lowers
-- it) and returns it.
insert into provision_generations (organization_id, entra_tenant_id, kind, generation)
values (@organization_id, @entra_tenant_id, @kind, @next)
on conflict (organization_id, entra_tenant_id, kind)
do update set generation = greatest(provision_generations.generation, excluded.generation)
returning generation;
