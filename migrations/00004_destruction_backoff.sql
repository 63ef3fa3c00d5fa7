-- Secret destructions are claimed with a lease and retried with backoff, so
-- entries that keep failing neither block newer ones nor hold a transaction
-- open across Vault calls.

-- +goose Up
alter table secret_destructions add column next_attempt_time timestamptz not null default now();
comment on column secret_destructions.next_attempt_time is
  'When the entry may be claimed next: a claim leases it for 5 minutes; a failure backs off (1m, 2m, 4m ... 1h).';
create index secret_destructions_next_attempt_time_idx on secret_destructions (next_attempt_time, id);

-- +goose Down
drop index secret_destructions_next_attempt_time_idx;
alter table secret_destructions drop column next_attempt_time;
