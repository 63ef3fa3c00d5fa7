-- Deprovisioning (issue 8 item 5): the generation of a provisioned
-- application's uniqueName, per organization, Entra tenant and kind.
-- Provisioning names the application dzconnect-{kind}-{hash}-g{generation};
-- a deprovision ends by bumping the generation, so a later provision never
-- reuses a uniqueName a soft-deleted (or detached) application may still
-- hold. No row means generation 1. Keyed by the Entra tenant (what the
-- uniqueName is derived from), not dzconnect's tenant row, so deleting and
-- re-adding a tenant does not reset it.

-- +goose Up
create table provision_generations (
  organization_id uuid    not null references organizations (id) on delete cascade,
  entra_tenant_id uuid    not null,
  kind            text    not null,
  generation      integer not null,
  constraint provision_generations_pk primary key (organization_id, entra_tenant_id, kind),
  constraint provision_generations_generation_ck check (generation >= 1)
);
comment on table provision_generations is 'uniqueName generation of provisioned applications; bumped by each deprovision (no row: 1).';

-- +goose Down
drop table provision_generations;
