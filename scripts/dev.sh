#!/usr/bin/env bash
# dev.sh: the `make dev` demo. Starts Postgres, Vault (dev mode), the msftsim
# Microsoft simulator and dzconnect in the background under .run/dev, creates a
# demo organization with an admin API key, and prints commands to paste.
#
#   scripts/dev.sh up     start (idempotent) and print the examples
#   scripts/dev.sh down   stop everything it started
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=.run/dev
HTTP_ADDR=${DZCONNECT_HTTP_ADDR:-127.0.0.1:8080}
GRPC_ADDR=${DZCONNECT_GRPC_ADDR:-127.0.0.1:9090}
INTERNAL_ADDR=${DZCONNECT_INTERNAL_ADDR:-127.0.0.1:9091}
SIM_ADDR=${MSFTSIM_ADDR:-127.0.0.1:8443}
log() { echo "dev: $*" >&2; }

stop_pid() { # stop_pid NAME
	local f=$DIR/$1.pid
	if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
		kill -TERM "$(cat "$f")"
		for _ in $(seq 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$f"
}

running() { [[ -f $DIR/$1.pid ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

wait_http() { # wait_http URL WHAT [curl args]
	local url=$1 what=$2; shift 2
	for _ in $(seq 300); do
		curl -fsS "$@" "$url" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	log "$what did not become ready at $url; see $DIR/*.log"; exit 1
}

case ${1:-up} in
down)
	stop_pid dzconnect
	stop_pid msftsim
	bash scripts/services.sh down "$DIR"
	rm -f "$DIR/demo.env"
	log "stopped"
	exit 0 ;;
up) ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

mkdir -p "$DIR"
[[ -x bin/dzconnect && -x bin/dzctl && -x bin/msftsim ]] || go build -o bin/ ./cmd/...
bash scripts/services.sh up "$DIR"
# shellcheck disable=SC1091
source "$DIR/env"

if ! running msftsim; then
	log "starting msftsim on https://$SIM_ADDR (seed cmd/msftsim/seed.example.json)"
	rm -f "$DIR/msftsim/endpoints.json"
	nohup bin/msftsim -listen "$SIM_ADDR" -state-dir "$DIR/msftsim" -seed cmd/msftsim/seed.example.json >"$DIR/msftsim.log" 2>&1 &
	echo $! >"$DIR/msftsim.pid"
fi
for _ in $(seq 300); do [[ -s $DIR/msftsim/endpoints.json ]] && break; sleep 0.2; done
wait_http "https://$SIM_ADDR/_sim/endpoints" msftsim --cacert "$DIR/msftsim/ca.pem"

[[ -s $DIR/admin-key ]] || bin/dzconnect gen-admin-key >"$DIR/admin-key"
chmod 600 "$DIR/admin-key"
ADMIN_KEY=$(cat "$DIR/admin-key")
if ! running dzconnect; then
	log "starting dzconnect (gRPC $GRPC_ADDR, REST http://$HTTP_ADDR, internal http://$INTERNAL_ADDR)"
	DZCONNECT_VAULT_ADDR=$VAULT_ADDR DZCONNECT_VAULT_TOKEN=$VAULT_TOKEN DZCONNECT_ADMIN_KEY=$ADMIN_KEY \
		DZCONNECT_GRPC_ADDR=$GRPC_ADDR DZCONNECT_HTTP_ADDR=$HTTP_ADDR DZCONNECT_INTERNAL_ADDR=$INTERNAL_ADDR DZCONNECT_LOG_FORMAT=text \
		DZCONNECT_MICROSOFT_ENDPOINTS_FILE=$DIR/msftsim/endpoints.json DZCONNECT_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true \
		nohup bin/dzconnect serve >"$DIR/dzconnect.log" 2>&1 &
	echo $! >"$DIR/dzconnect.pid"
fi
wait_http "http://$HTTP_ADDR/readyz" dzconnect

if [[ ! -s $DIR/demo.env ]]; then
	export DZCONNECT_ADDR=$GRPC_ADDR
	org=$(DZCONNECT_API_KEY=$ADMIN_KEY bin/dzctl org create --display-name "Demo MSSP" -o name)
	key=$(DZCONNECT_API_KEY=$ADMIN_KEY bin/dzctl apikey create --org "$org" --display-name demo-admin --role admin --field secret 2>/dev/null)
	[[ -n $org && -n $key ]] || { log "could not create the demo organization"; exit 1; }
	umask 077
	printf 'export DZCONNECT_ADDR=%q\nexport DZCONNECT_API_KEY=%q\nexport DEMO_ORG=%q\nexport DEMO_HTTP=%q\n' \
		"$GRPC_ADDR" "$key" "$org" "http://$HTTP_ADDR" >"$DIR/demo.env"
fi
# shellcheck disable=SC1091
source "$DIR/demo.env"

cat <<EOT

dzconnect is running (logs: $DIR/dzconnect.log; stop everything: make dev-down).
Demo organization $DEMO_ORG with an admin key. In your shell:

  source $DIR/demo.env

REST (curl):
  curl -s -H "Authorization: Bearer \$DZCONNECT_API_KEY" \$DEMO_HTTP/v1/\$DEMO_ORG
  curl -s -H "Authorization: Bearer \$DZCONNECT_API_KEY" -X POST \$DEMO_HTTP/v1/\$DEMO_ORG/tenants \\
       -d '{"entraTenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","cloud":"CLOUD_GLOBAL","displayName":"Contoso"}'
  curl -s -H "Authorization: Bearer \$DZCONNECT_API_KEY" \$DEMO_HTTP/v1/\$DEMO_ORG/tenants
  curl -s -H "Authorization: Bearer \$DZCONNECT_API_KEY" "\$DEMO_HTTP/v1/permissionCatalog?kind=INTEGRATION_KIND_MICROSOFT_SENTINEL"

dzctl (gRPC):
  bin/dzctl tenant list --org \$DEMO_ORG
  TENANT=\$(bin/dzctl tenant list --org \$DEMO_ORG -o name | head -n1)
  echo 'my~Client.Secret_Value_0123456789abcdef' | bin/dzctl integration create --tenant \$TENANT \\
       --kind defender --client-id 3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b --client-secret-file -
  bin/dzctl integration list --org \$DEMO_ORG
  bin/dzctl audit list --org \$DEMO_ORG
  bin/dzctl catalog --kind defender

Verify an integration against the simulator (msftsim's seeded tenant "Contoso" and its app):
  T=\$(bin/dzctl tenant create --org \$DEMO_ORG --entra-tenant-id c0c0c0c0-0000-4000-8000-000000000001 \\
       --display-name "Contoso (simulated)" -o name)
  I=\$(echo 'abc8Q~demo-secret-do-not-use-in-prod-000' | bin/dzctl integration create --tenant \$T --kind defender \\
       --client-id d0d0d0d0-0000-4000-8000-000000000001 --client-secret-file - -o name)
  bin/dzctl check \$I
  bin/dzctl integration checks \$I

Provision an integration (the setup guide, automated) in msftsim's tenant "Northwind", where the
organization's provisioner is consented with the least privilege docs/provisioning.md asks for:
  echo 'prv8Q~demo-provisioner-secret-00000000' | bin/dzctl org set-provisioner \$DEMO_ORG \\
       --client-id a0a0a0a0-0000-4000-8000-000000000001 --client-secret-file -
  P=\$(bin/dzctl tenant create --org \$DEMO_ORG --entra-tenant-id e0e0e0e0-0000-4000-8000-000000000003 \\
       --display-name "Northwind (simulated)" -o name)
  LINK=\$(bin/dzctl tenant consent-link \$P --redirect-uri https://localhost/consent --field url)
  REDIRECT=\$(curl -s --cacert $DIR/msftsim/ca.pem -o /dev/null -w '%{redirect_url}' "\$LINK")   # the administrator approves
  bin/dzctl tenant complete-consent --org \$DEMO_ORG --redirect-url "\$REDIRECT"
  bin/dzctl integration provision --tenant \$P --kind sentinel --wait \\
       --workspace /subscriptions/33333333-2222-4333-8444-555555555555/resourceGroups/rg-northwind/providers/Microsoft.OperationalInsights/workspaces/ws-northwind

Simulator: https://$SIM_ADDR (CA: $DIR/msftsim/ca.pem; admin API under /_sim, see docs/msftsim.md)
OpenAPI: http://$HTTP_ADDR/openapi.json   Health: http://$HTTP_ADDR/healthz, /readyz
Internal (operators only): http://$INTERNAL_ADDR/metrics, /debug/pprof/, /readyz (which dependency is down),
  gRPC reflection: grpcurl -plaintext $INTERNAL_ADDR list
EOT
