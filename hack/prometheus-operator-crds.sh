#!/usr/bin/env bash
# Fetches prometheus-operator's CRDs (ServiceMonitor & co.) at the version pinned in
# hack/versions.env, offline-friendly: from the Go module proxy (the module zip carries
# example/prometheus-operator-crd/), through Go's module cache, into a versioned cache outside
# the repository. Prints the directory holding monitoring.coreos.com_*.yaml on the last line.
#
#   hack/prometheus-operator-crds.sh           fetch if missing, print the dir
#   TOOLS_CACHE=/path hack/...                 cache root (default ~/.cache/checkout-link-operator)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

root=${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/checkout-link-operator}
module=github.com/prometheus-operator/prometheus-operator
out="$root/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
log() { printf '[prometheus-operator-crds] %s\n' "$*" >&2; }

if [ ! -s "$out/monitoring.coreos.com_servicemonitors.yaml" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod
  go mod init local/prometheus-operator-crds >/dev/null 2>&1
  log "downloading $module@$PROMETHEUS_OPERATOR_VERSION from the Go module proxy"
  json=$(go mod download -json "$module@$PROMETHEUS_OPERATOR_VERSION") ||
    { log "go mod download failed: $json"; exit 1; }
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  src="$dir/example/prometheus-operator-crd"
  [ -s "$src/monitoring.coreos.com_servicemonitors.yaml" ] ||
    { log "no $src/monitoring.coreos.com_servicemonitors.yaml in the module"; exit 1; }
  mkdir -p "$out.tmp"
  cp "$src"/monitoring.coreos.com_*.yaml "$out.tmp/"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "CRDs ready in $out"
fi
echo "$out"
