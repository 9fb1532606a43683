#!/usr/bin/env bash
# Builds hack/kstatus (kstatus' status.Compute from sigs.k8s.io/cli-utils, and Argo CD's way of
# running a Lua health script on gopher-lua) from the modules pinned in hack/kstatus/go.mod into
# a cache outside the repository, and reuses it when it is already there. The cache key is the
# cli-utils version plus a hash of the program and its go.mod/go.sum, so an edit rebuilds.
# Prints the binary's path on the last line of stdout; progress goes to stderr.
#
#   hack/build-kstatus.sh          build if missing, print the binary path
#   TOOLS_CACHE=/path hack/...     choose the cache root (default ~/.cache/checkout-link-operator)
set -euo pipefail
src=$(cd "$(dirname "$0")/kstatus" && pwd)
log() { printf '[build-kstatus] %s\n' "$*" >&2; }

version=$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$src/go.mod")
[ -n "$version" ] || { log "sigs.k8s.io/cli-utils is not required in $src/go.mod"; exit 1; }
hash=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)
root=${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/checkout-link-operator}
bin="$root/tools/kstatus-$version-$hash/bin"
mkdir -p "$bin"

if [ ! -x "$bin/kstatus" ]; then
  # Tests may call this script concurrently: one builds, the others wait and reuse.
  exec 9>"$bin/.lock"
  flock 9
  if [ ! -x "$bin/kstatus" ]; then
    log "compiling kstatus (cli-utils $version) into $bin"
    start=$SECONDS
    (
      cd "$src"
      # -mod=readonly: go.mod and go.sum are the pins; a missing sum is an error, not an update.
      GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
        go build -trimpath -ldflags "-s -w" -o "$bin/kstatus.tmp" .
    )
    mv "$bin/kstatus.tmp" "$bin/kstatus"
    log "done in $((SECONDS - start)) s"
  fi
fi
echo "$bin/kstatus"
