#!/usr/bin/env bash
# check-deploy.sh: render and validate the deployment files offline (`make check-deploy`,
# run by .ci/run). No cluster, Docker daemon or network access is needed.
#
#   1. helm lint the chart (deploy/helm/dzconnect) with its default values and with every
#      values file under its ci/ (ci/all-on-values.yaml turns every option on);
#   2. helm template each of them and validate the output with deploycheck
#      (tools/helm/deploycheck): every document decoded strictly into the typed structs
#      the API server uses (k8s.io/api, prometheus-operator's), then references,
#      probes, security context and secret handling checked;
#   3. renders that must fail (no TLS and no plaintext, a secret as a literal value, ...)
#      do fail, naming the problem;
#   4. deploy/compose.yaml loaded as `docker compose config` loads it (compose-go);
#   5. every dzconnect_* metric the alerts (chart and docs/operating.md) use exists;
#   6. deploycheck's own tests (it refuses what it should).
#
# Helm is built once per machine by scripts/ensure-helm.sh. Output under .run/deploy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
chart=deploy/helm/dzconnect
out=.run/deploy
mkdir -p "$out"
log() { echo "check-deploy: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

helm=$(bash scripts/ensure-helm.sh)
"$helm" version --short >&2
(cd tools/helm && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -o "../../$out/deploycheck" ./deploycheck)
check=$out/deploycheck
ref=docs/configuration.md

# The Kubernetes version the chart is rendered and linted for: its minimum (Chart.yaml
# kubeVersion). A Helm built with plain `go build` would otherwise assume v1.20.
kube=1.30.0
# Helm must not read or write a user's configuration or caches here.
export HELM_CACHE_HOME=$PWD/$out/helm/cache HELM_CONFIG_HOME=$PWD/$out/helm/config HELM_DATA_HOME=$PWD/$out/helm/data

log "1-2. lint, render and validate: default values, then each of $chart/ci/*.yaml"
variants=(default)
for f in "$chart"/ci/*.yaml; do variants+=("$f"); done
for v in "${variants[@]}"; do
	args=()
	name=default
	if [[ $v != default ]]; then
		args=(-f "$v")
		name=$(basename "$v" .yaml)
	fi
	"$helm" lint --strict --kube-version "$kube" "$chart" "${args[@]}" >"$out/lint-$name.txt" 2>&1 || { cat "$out/lint-$name.txt" >&2; die "helm lint ($name)"; }
	"$helm" template dz "$chart" --kube-version "$kube" --namespace dzconnect "${args[@]}" >"$out/rendered-$name.yaml" ||
		die "helm template ($name)"
	"$check" k8s -config-reference "$ref" "$out/rendered-$name.yaml" || die "rendered manifests ($name)"
done

log "3. renders that must fail"
must_fail() { # must_fail WANT_IN_ERROR HELM_ARGS...
	local want=$1 err
	shift
	if err=$("$helm" template dz "$chart" --kube-version "$kube" "$@" 2>&1 >/dev/null); then
		die "helm template $* rendered; it must fail with: $want"
	fi
	[[ $err == *"$want"* ]] || die "helm template $* failed without '$want': $err"
	echo "  refused as expected: $*" >&2
}
must_fail "set tls.existingSecret" --set tls.existingSecret=
must_fail "not both" --set allowPlaintext=true
must_fail "secrets come only from Kubernetes Secrets" --set env.DZCONNECT_DATABASE_URL=postgres://u:p@db/dz
must_fail "secrets come only from Kubernetes Secrets" --set env.DZCONNECT_ADMIN_KEY=dzk_x
must_fail "only DZCONNECT_* settings" --set env.GOMAXPROCS=2
must_fail "value must be one of 'approle', 'token'" --set vault.auth.method=kubernetes
must_fail "vault.address is required" --set vault.address=
must_fail "needs internalListener.enabled" --set internalListener.enabled=false --set metrics.serviceMonitor.enabled=true
must_fail "adress" --set vault.adress=https://vault:8200 # values.schema.json: a misspelt key
must_fail "value must be one of 'http', 'metrics'" --set probes.port=grpc
must_fail "probes.port=metrics needs internalListener.enabled" --set probes.port=metrics --set internalListener.enabled=false
must_fail "minReplicas must not exceed" --set autoscaling.enabled=true --set autoscaling.minReplicas=5 --set autoscaling.maxReplicas=2
# A DZCONNECT_* name that dzconnect does not have renders, and deploycheck refuses it.
"$helm" template dz "$chart" --kube-version "$kube" --set env.DZCONNECT_SWEEP_INTERVALL=1h >"$out/rendered-typo.yaml"
if "$check" k8s -config-reference "$ref" "$out/rendered-typo.yaml" >/dev/null 2>"$out/typo.err"; then
	die "deploycheck accepted the unknown DZCONNECT_SWEEP_INTERVALL"
fi
grep -q "DZCONNECT_SWEEP_INTERVALL is no dzconnect setting" "$out/typo.err" || die "unexpected: $(cat "$out/typo.err")"
echo "  refused as expected: env DZCONNECT_SWEEP_INTERVALL (deploycheck)" >&2

log "4. compose file"
"$check" compose -config-reference "$ref" deploy/compose.yaml || die "deploy/compose.yaml"

log "5. metrics used by the alerts exist"
metrics=$( (grep -ohE 'dzconnect_[a-z_]+' "$chart/templates/prometheusrule.yaml" docs/operating.md || true) |
	sed -E 's/_(bucket|sum|count)$//' | sort -u)
[[ -n $metrics ]] || die "no dzconnect_* metric found in the alerts"
for m in $metrics; do
	grep -rqE "\"$m\"" --include='*.go' internal || die "$m is used by an alert but no Go code registers it"
done
echo "  $(wc -w <<<"$metrics") metric names, all registered in internal/" >&2

log "6. deploycheck's own tests"
(cd tools/helm && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" go test -count=1 ./deploycheck/)

log "ok: chart (${#variants[@]} value sets, 13 refusals), compose file, alert metrics"
