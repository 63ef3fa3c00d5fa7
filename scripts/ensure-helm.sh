#!/usr/bin/env bash
# ensure-helm.sh: make sure a Helm v3.22.0 binary exists and print its path.
#
# Built from the Go module proxy through the tools/helm module (its own go.mod, so
# Helm's and Kubernetes' dependency graphs never touch the root module) into
# ${DZ_TOOLS_DIR:-$HOME/.cache/dzconnect/tools}/helm-3.22.0/helm, outside the
# repository, so every clone on a machine shares one build (~3 min cold on 2 cores).
# Idempotent and safe to run concurrently (flock). Path on stdout, progress on stderr.
set -euo pipefail

version=3.22.0
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir=${DZ_TOOLS_DIR:-${HOME:?HOME or DZ_TOOLS_DIR must be set}/.cache/dzconnect/tools}
dir="$tools_dir/helm-$version"
bin="$dir/helm"

runnable() {
	local out
	[[ -x $bin ]] && out=$("$bin" version --template '{{.Version}}' 2>/dev/null) && [[ $out == "v$version" ]]
}

if runnable; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
if ! flock -n 9; then
	echo "ensure-helm: another build holds $dir/.lock, waiting" >&2
	flock 9
fi
if runnable; then # another process built it while we waited
	echo "$bin"
	exit 0
fi

echo "ensure-helm: building Helm v$version into $bin (takes a few minutes)" >&2
tmp="$dir/helm.tmp.$$"
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
(
	cd "$repo_root/tools/helm"
	# Helm stamps its version through ldflags; without them `helm version` says v3.x-dev... .
	GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 go build -trimpath \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=v$version" \
		-o "$tmp" helm.sh/helm/v3/cmd/helm
) >&2
"$tmp" version --template '{{.Version}}' >&2
echo >&2
mv -f "$tmp" "$bin"
echo "ensure-helm: built in $((SECONDS - start))s" >&2
echo "$bin"
