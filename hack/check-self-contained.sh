#!/usr/bin/env bash
# Fails when a tracked file refers to a folder beside the repository: a user's clone has
# nothing there, so every file a test or script reads must live inside the repository
# (Polar's documents and vectors are in polar-api/).
set -euo pipefail
cd "$(dirname "$0")/.."
# Spelled in two pieces so that this script does not match itself.
needle='..''/shared'
if hits=$(git grep -n -F -e "$needle" -- . 2>/dev/null); then
  echo "these tracked files refer to $needle, which a fresh clone does not have:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "self-contained: no tracked file refers to $needle"
