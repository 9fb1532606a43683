#!/usr/bin/env bash
# Checks the toolchains `make test`, `make demo` and `make bench` need and cannot install by
# themselves. Prints one line per missing piece saying how to get it, and exits 1 if any is
# missing; silent (one summary line) when everything is there. What make installs by itself
# (rustfmt and clippy, the Go-built Kubernetes tools, helm, Python packages in a virtualenv,
# lua5.4 as root) is not checked here.
#
#   hack/prereqs.sh          check; `make test` and `make demo` run it first
set -uo pipefail
missing=0
need() { printf 'missing prerequisite: %s\n' "$*" >&2; missing=1; }

# version_ge HAVE WANT: dotted versions, numerically.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

rust_min=1.89 go_min=1.25 python_min=3.9
if command -v cargo >/dev/null && command -v rustc >/dev/null; then
  v=$(rustc --version | awk '{print $2}')
  version_ge "$v" "$rust_min" || need "Rust $rust_min or newer (found rustc $v): rustup update stable"
else
  need "Rust (cargo, rustc) $rust_min or newer: install rustup from https://rustup.rs, then rustup default stable"
fi
if ! command -v rustup >/dev/null; then
  { command -v rustfmt >/dev/null && cargo clippy --version >/dev/null 2>&1; } ||
    need "rustfmt and clippy (or rustup to install them): rustup component add rustfmt clippy"
fi
if command -v go >/dev/null; then
  v=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  version_ge "${v:-0}" "$go_min" ||
    need "Go $go_min or newer (found ${v:-none}): https://go.dev/dl (the tools are built from the Go module proxy)"
else
  need "Go $go_min or newer with access to the Go module proxy: https://go.dev/dl"
fi
if command -v python3 >/dev/null; then
  v=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  version_ge "$v" "$python_min" || need "Python $python_min or newer (found $v)"
  python3 -c 'import venv, ensurepip' 2>/dev/null ||
    need "Python's venv and pip modules: apt-get install python3-venv (Debian/Ubuntu)"
else
  need "Python $python_min or newer with venv: apt-get install python3 python3-venv"
fi
command -v cc >/dev/null || command -v gcc >/dev/null ||
  need "a C compiler and linker for Rust: apt-get install build-essential"
command -v git >/dev/null || need "git: apt-get install git"
command -v curl >/dev/null || need "curl (make demo buys through the emulator with it): apt-get install curl"
command -v flock >/dev/null || need "flock (util-linux): apt-get install util-linux"
if ! command -v lua5.4 >/dev/null && [ "$(id -u)" != 0 ] && ! command -v apt-get >/dev/null; then
  need "lua5.4 with lua-cjson (make test installs them with apt-get when run as root)"
fi

if [ "$missing" != 0 ]; then
  echo "install the prerequisites above, then run make again (README: Prerequisites)" >&2
  exit 1
fi
echo "prerequisites: Rust $(rustc --version | awk '{print $2}'), $(go env GOVERSION), Python $(python3 -c 'import platform; print(platform.python_version())')"
