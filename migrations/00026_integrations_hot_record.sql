-- A check's record updates its integration's state, last check time and
-- state change time (verify's grouped record, every scheduled check). An
-- update is HOT (heap-only: no index touched, the new row version on the
-- same page) when none of the columns it changes is indexed and the page
-- has room; otherwise every index of integrations gets a new entry
-- (five of them, for every check). BenchmarkSweep (docs/verification.md,
-- session 8) found no record HOT: the state is indexed, and pages filled
-- by inserts had no room.
--
-- integrations_organization_id_state_idx serves no query: the only state
-- filter (ListIntegrations, optional, in ID order with a limit) walks the
-- primary key, and the metrics' count by state spans every organization.
-- fillfactor 80 leaves each page room for the next version of its rows;
-- it applies to pages written from now on.

-- +goose Up
drop index integrations_organization_id_state_idx;
alter table integrations set (fillfactor = 80);

-- +goose Down
alter table integrations reset (fillfactor);
create index integrations_organization_id_state_idx on integrations (organization_id, state);
