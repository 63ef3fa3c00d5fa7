-- Cached API keys (issue 11 item 10): every replica caches authenticated
-- keys briefly (internal/auth KeyCache) and must forget one as soon as it
-- is deleted or changed, on whichever replica that happened. The trigger
-- announces it in the changing transaction, so every writer notifies
-- (the API, an organization's deletion cascading to its keys, a future
-- job, an operator's psql): the notification is delivered on commit to
-- every replica's LISTEN connection (internal/postgres/apikey_listener.go).
-- The payload is "<organization_id>/<id>" of the key (never its hash);
-- a truncate announces "*" (forget every key).

-- +goose Up
-- +goose StatementBegin
create function api_keys_notify() returns trigger language plpgsql as $$
begin
  if tg_level = 'STATEMENT' then
    perform pg_notify('dzconnect_api_keys', '*');
  else
    perform pg_notify('dzconnect_api_keys', old.organization_id::text || '/' || old.id::text);
  end if;
  return null;
end;
$$;
-- +goose StatementEnd
create trigger api_keys_notify_tg after update or delete on api_keys
  for each row execute function api_keys_notify();
create trigger api_keys_notify_truncate_tg after truncate on api_keys
  for each statement execute function api_keys_notify();
comment on function api_keys_notify() is
  'Announces a changed or deleted API key on channel dzconnect_api_keys ("<organization_id>/<id>", or "*" after a truncate), so every replica evicts it from its key cache.';

-- +goose Down
drop trigger api_keys_notify_truncate_tg on api_keys;
drop trigger api_keys_notify_tg on api_keys;
drop function api_keys_notify();
