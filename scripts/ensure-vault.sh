#!/usr/bin/env bash
# ensure-vault.sh: make sure a Vault v1.21.0 binary exists and print its path.
#
# The binary is built from the Go module proxy through the tools/vault module
# (its own go.mod, so Vault's dependency graph never touches the root module)
# into ${DZ_TOOLS_DIR:-$HOME/.cache/dzconnect/tools}/vault-1.21.0/vault, outside
# the repository, so every clone on a machine shares one build (-tags minimal: KV v2 and AppRole; ~10 min cold, ~200 MB).
# Idempotent and safe to run concurrently (flock). Path on stdout, progress on stderr.
set -euo pipefail

version=1.21.0
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir=${DZ_TOOLS_DIR:-${HOME:?HOME or DZ_TOOLS_DIR must be set}/.cache/dzconnect/tools}
dir="$tools_dir/vault-$version"
bin="$dir/vault"

runnable() {
	local out
	[[ -x $bin ]] && out=$("$bin" version 2>/dev/null) && [[ $out == "Vault v$version"* ]]
}

if runnable; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
if ! flock -n 9; then
	echo "ensure-vault: another build holds $dir/.lock, waiting" >&2
	flock 9
fi
if runnable; then # another process built it while we waited
	echo "$bin"
	exit 0
fi

echo "ensure-vault: building Vault v$version into $bin (takes several minutes)" >&2
tmp="$dir/vault.tmp.$$"
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
(
	cd "$repo_root/tools/vault"
	GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -tags minimal -trimpath -o "$tmp" github.com/hashicorp/vault
) >&2
"$tmp" version >&2
mv -f "$tmp" "$bin"
echo "ensure-vault: built in $((SECONDS - start))s" >&2
echo "$bin"
