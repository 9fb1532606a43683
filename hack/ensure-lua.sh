#!/usr/bin/env bash
# Makes sure a Lua 5.4 interpreter with the cjson module (Debian packages lua5.4 and lua-cjson)
# is installed, for the Argo CD health-check tests (tests/gitops_health.rs). Installs them with
# apt-get only when missing (that needs root, as on CI machines), then prints the interpreter
# path on the last line of stdout; progress goes to stderr.
#
#   hack/ensure-lua.sh             install what is missing, print the interpreter path
set -euo pipefail
log() { printf '[ensure-lua] %s\n' "$*" >&2; }

has_cjson() { "$1" -e 'require("cjson")' >/dev/null 2>&1; }

lua=$(command -v lua5.4 || true)
if [ -z "$lua" ] || ! has_cjson "$lua"; then
  if [ "$(id -u)" != 0 ]; then
    log "lua5.4 and lua-cjson are missing; install them: sudo apt-get install -y lua5.4 lua-cjson"
    exit 1
  fi
  # A lock makes concurrent test processes wait for one install instead of racing dpkg.
  exec 9>"${TMPDIR:-/tmp}/checkout-link-operator-ensure-lua.lock"
  flock 9
  lua=$(command -v lua5.4 || true)
  if [ -z "$lua" ] || ! has_cjson "$lua"; then
    log "installing lua5.4 and lua-cjson from the Debian archive"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends lua5.4 lua-cjson >&2
    lua=$(command -v lua5.4)
  fi
fi
has_cjson "$lua" || { log "$lua cannot load cjson"; exit 1; }
log "lua ready: $("$lua" -v 2>&1)"
echo "$lua"
