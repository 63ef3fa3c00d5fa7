#!/usr/bin/env bash
# services.sh: throwaway Postgres + Vault (dev mode) for tests and local development.
#
#   scripts/services.sh up DIR     start both (no-op when DIR is already up), write DIR/env
#   scripts/services.sh down DIR   stop both, delete the Postgres cluster (logs stay in DIR)
#   scripts/services.sh env DIR    print DIR/env (eval "$(scripts/services.sh env .run/dev)")
#   scripts/services.sh status DIR exit 0 when both are up
#
# Postgres: initdb with trust auth, listening on 127.0.0.1 on a free port, durability off
# (fsync, synchronous_commit, full_page_writes) because the data is disposable. It runs as
# an unprivileged user when started as root ("postgres" if present, else a system user
# "dzconnect-pg" is created). Vault: `vault server -dev` on 127.0.0.1 and a free port with
# a random root token and KV v2 at secret/; its state is in memory. Binary: $DZCONNECT_VAULT_BIN,
# else `vault` on PATH, else scripts/ensure-vault.sh.
set -euo pipefail

usage() { echo "usage: $0 up|down|env|status DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "services: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- helpers -------------------------------------------------------------------------------

pg_user=""
if ((EUID == 0)); then
	if id postgres &>/dev/null; then
		pg_user=postgres
	else
		pg_user=dzconnect-pg
		id "$pg_user" &>/dev/null ||
			useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user"
	fi
fi

as_pg_exec=()
[[ -z $pg_user ]] || as_pg_exec=(setpriv --reuid="$pg_user" --regid="$pg_user" --init-groups --)

# as_pg runs a command as the unprivileged Postgres user (directly when not root).
as_pg() {
	if [[ -n $pg_user ]]; then
		(cd / && "${as_pg_exec[@]}" "$@")
	else
		"$@"
	fi
}

free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# wait_ready PID SECONDS CMD...: poll CMD every 100 ms until it succeeds; fail when the
# process PID exits or time runs out.
wait_ready() {
	local pid=$1 deadline=$((SECONDS + $2))
	shift 2
	until "$@" &>/dev/null; do
		pid_alive "$pid" && ((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# pid_alive PID: the process exists and is not a zombie waiting to be reaped.
pid_alive() {
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null &&
		[[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) != Z ]]
}

# wait_exit PID SECONDS: wait until PID has exited; fail if it is still alive then.
wait_exit() {
	local deadline=$((SECONDS + $2))
	while pid_alive "$1"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

vault_bin() {
	if [[ -n ${DZCONNECT_VAULT_BIN:-} ]]; then
		echo "$DZCONNECT_VAULT_BIN"
	elif command -v vault >/dev/null; then
		command -v vault
	else
		bash "$script_dir/ensure-vault.sh"
	fi
}

# The cluster lives in DIR/pg unless the unprivileged user cannot reach DIR (e.g. a clone
# under /root); then it lives in a private directory under /tmp and DIR/pg links to it.
pg_root() { if [[ -e $DIR/pg ]]; then readlink -f "$DIR/pg"; fi; }

pg_running() {
	local root
	root=$(pg_root)
	[[ -n $root && -f $root/data/postmaster.pid ]] && pid_alive "$(head -1 "$root/data/postmaster.pid")"
}

vault_running() {
	[[ -f $DIR/vault.pid ]] && pid_alive "$(cat "$DIR/vault.pid")"
}

# ---- postgres --------------------------------------------------------------------------------

pg_up() {
	local root data port pid attempt
	rm -rf "$(pg_root)" "$DIR/pg"
	if [[ -n $pg_user ]]; then
		mkdir -p "$DIR/pg"
		chown "$pg_user:" "$DIR/pg"
		if ! as_pg test -w "$DIR/pg"; then
			rmdir "$DIR/pg"
			root=$(mktemp -d /tmp/dzconnect-pg.XXXXXX)
			chown "$pg_user:" "$root"
			ln -s "$root" "$DIR/pg"
		fi
	else
		mkdir -p "$DIR/pg"
	fi
	root=$(pg_root)
	data=$root/data

	log "initdb $data"
	as_pg initdb -D "$data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$DIR/initdb.log" 2>&1 ||
		{ cat "$DIR/initdb.log" >&2; die "initdb failed"; }
	cat >>"$data/postgresql.conf" <<-CONF
		# services.sh: disposable cluster, durability off for speed.
		listen_addresses = '127.0.0.1'
		unix_socket_directories = ''
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		wal_level = minimal
		max_wal_senders = 0
		max_connections = 400
		shared_buffers = 256MB
		checkpoint_timeout = 30min
		max_wal_size = 4GB
	CONF

	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		log "starting postgres on 127.0.0.1:$port"
		(cd / && exec setsid "${as_pg_exec[@]}" postgres -D "$data" -p "$port") >>"$DIR/postgres.log" 2>&1 </dev/null 9>&- &
		pid=$!
		if wait_ready "$pid" 60 pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
			echo "$port" >"$DIR/pg.port"
			return 0
		fi
		if pid_alive "$pid"; then
			tail -20 "$DIR/postgres.log" >&2
			die "postgres did not become ready within 60s (log: $DIR/postgres.log)"
		fi
		log "postgres exited (attempt $attempt), retrying on another port"
	done
	tail -20 "$DIR/postgres.log" >&2
	die "postgres failed to start (log: $DIR/postgres.log)"
}

pg_down() {
	local root
	root=$(pg_root)
	if pg_running; then
		log "stopping postgres"
		as_pg pg_ctl stop -D "$root/data" -m fast -w -t 60 >/dev/null ||
			as_pg pg_ctl stop -D "$root/data" -m immediate -w -t 30 >/dev/null
	fi
	[[ -n $root ]] && rm -rf "$root"
	rm -rf "$DIR/pg" "$DIR/pg.port"
}

# ---- vault -----------------------------------------------------------------------------------

vault_up() {
	local bin token port pid attempt addr
	bin=$(vault_bin)
	"$bin" version >/dev/null || die "vault binary $bin is not runnable"
	token="dev-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		addr="http://127.0.0.1:$port"
		log "starting vault server -dev on $addr"
		(cd "$DIR" && exec setsid "$bin" server -dev -dev-root-token-id="$token" \
			-dev-listen-address="127.0.0.1:$port" -dev-no-store-token) >>"$DIR/vault.log" 2>&1 </dev/null 9>&- &
		pid=$!
		echo "$pid" >"$DIR/vault.pid"
		# Unsealed, and the dev KV v2 engine is mounted at secret/ and answering.
		if wait_ready "$pid" 60 env VAULT_ADDR="$addr" VAULT_TOKEN="$token" "$bin" read secret/config; then
			echo "$addr" >"$DIR/vault.addr"
			echo "$token" >"$DIR/vault.token"
			return 0
		fi
		if pid_alive "$pid"; then
			tail -20 "$DIR/vault.log" >&2
			die "vault did not become ready within 60s (log: $DIR/vault.log)"
		fi
		log "vault exited (attempt $attempt), retrying on another port"
	done
	tail -20 "$DIR/vault.log" >&2
	die "vault failed to start (log: $DIR/vault.log)"
}

vault_down() {
	local pid
	if vault_running; then
		pid=$(cat "$DIR/vault.pid")
		log "stopping vault (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		wait_exit "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$DIR/vault.pid" "$DIR/vault.addr" "$DIR/vault.token"
}

# ---- commands --------------------------------------------------------------------------------

write_env() {
	local pgport vaddr vtoken base
	pgport=$(cat "$DIR/pg.port")
	vaddr=$(cat "$DIR/vault.addr")
	vtoken=$(cat "$DIR/vault.token")
	base="postgres://postgres@127.0.0.1:$pgport"
	cat >"$DIR/env.tmp" <<-ENV
		# Written by scripts/services.sh up $DIR
		export DZCONNECT_TEST_DATABASE_URL='$base/postgres?sslmode=disable'
		export DZCONNECT_TEST_VAULT_ADDR='$vaddr'
		export DZCONNECT_TEST_VAULT_TOKEN='$vtoken'
		export DZCONNECT_DATABASE_URL='$base/dzconnect?sslmode=disable'
		export VAULT_ADDR='$vaddr'
		export VAULT_TOKEN='$vtoken'
	ENV
	mv "$DIR/env.tmp" "$DIR/env"
}

# lock serializes up/down on DIR. Children must not inherit fd 9 (they would hold the
# lock for their whole life): every background start closes it with 9>&-.
lock() {
	exec 9>"$DIR/.services.lock"
	flock -w 300 9 || die "timed out waiting for $DIR/.services.lock"
}

case $cmd in
up)
	lock
	if pg_running && vault_running && [[ -f $DIR/env ]]; then
		log "already up in $DIR"
		exit 0
	fi
	start=$SECONDS
	vault_down
	pg_down
	rm -f "$DIR/env"
	# All or nothing: a failed start stops whatever did start.
	started=false
	trap '$started || { log "start-up failed, stopping what started"; vault_down; pg_down; }' EXIT
	pg_up
	createdb -h 127.0.0.1 -p "$(cat "$DIR/pg.port")" -U postgres dzconnect
	vault_up
	write_env
	started=true
	log "up in $((SECONDS - start))s; env in $DIR/env, logs in $DIR/{postgres,vault}.log"
	;;
down)
	lock
	rm -f "$DIR/env"
	vault_down
	pg_down
	;;
env)
	pg_running && vault_running && [[ -f $DIR/env ]] || die "services are not up in $DIR (run: $0 up $DIR)"
	cat "$DIR/env"
	;;
status)
	pg_running && vault_running && [[ -f $DIR/env ]]
	;;
*) usage ;;
esac
