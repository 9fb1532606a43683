#!/usr/bin/env bash
# Checks polar-emulator with Polar's official Python SDK (PyPI polar-sdk): every
# checkout-link operation and the product, discount, organisation and order
# reads (orders bought with the emulator's buy control), once
# per API version the SDK has a module for (hack/polar-sdk/check.py). A call
# passes only when the SDK returns its typed model, or raises its typed error,
# without a deserialisation error.
#
# polar-sdk is installed from PyPI into a venv outside the repository and reused
# while its version matches. The emulator runs on a free loopback port with the
# demo seed and rate limiting off, and is stopped afterwards.
#
# Environment: CARGO (default cargo), XDG_CACHE_HOME.
set -euo pipefail

POLAR_SDK_VERSION="1.0.2"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/checkout-link-operator/venv-polar-sdk"
cargo="${CARGO:-cargo}"

installed() {
  "$venv/bin/python" -c 'import polar; print(polar.__version__)' 2>/dev/null || true
}
if [ "$(installed)" != "$POLAR_SDK_VERSION" ]; then
  echo "polar-sdk.sh: installing polar-sdk $POLAR_SDK_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "polar-sdk==$POLAR_SDK_VERSION"
  if [ "$(installed)" != "$POLAR_SDK_VERSION" ]; then
    echo "polar-sdk.sh: polar-sdk $POLAR_SDK_VERSION did not install into $venv" >&2
    exit 1
  fi
fi

"$cargo" build --quiet -p polar-emulator --bin polar-emulator --manifest-path "$repo/Cargo.toml"
target_dir="$("$cargo" metadata --no-deps --format-version 1 --manifest-path "$repo/Cargo.toml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
emulator="$target_dir/debug/polar-emulator"

work="$(mktemp -d)"
# The built-in demo seed, every version Polar serves (the defaults), no rate limit.
"$emulator" --listen 127.0.0.1:0 --rate-limit 0 >"$work/emulator.out" 2>"$work/emulator.err" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/^polar-emulator listening on //p' "$work/emulator.out")"
  [ -n "$base" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/emulator.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "polar-sdk.sh: the emulator did not start" >&2
  exit 1
fi
echo "polar-sdk.sh: emulator at $base, polar-sdk $POLAR_SDK_VERSION"

cd "$work"
"$venv/bin/python" "$repo/hack/polar-sdk/check.py" "$base"
