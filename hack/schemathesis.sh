#!/usr/bin/env bash
# Checks polar-emulator with schemathesis (response schemas, status codes and
# content types) in three runs, each sending its Polar-Version:
#   1. links-2026-04: Polar's 2026-04 document, checkout-links subset;
#   2. links-2026-10: our reconstructed 2026-10 checkout-links subset;
#   3. reads-2026-04: Polar's 2026-04 document, product, discount,
#      organisation and order reads (before it, a link is created and three
#      orders are bought through it with the emulator's buy control, one of
#      them partly refunded, so the order reads answer with real bodies).
# Polar's 2026-04 documents predate the unit_based and metered_tiers prices that
# Polar now serves in every version (REFERENCE.md §1; polar-sdk's v2026_04
# models have them): the runs use copies of them whose ProductPrice also admits
# the 2026-10 subset's ProductPriceUnitBased and ProductPriceMeteredTiers.
#
# schemathesis is installed from PyPI into a venv outside the repository and
# reused while its version matches. The emulator runs on a free loopback port
# with the demo seed and rate limiting off, is reset before each run, and is
# stopped afterwards.
#
# Environment: CARGO (default cargo), SCHEMATHESIS_MAX_EXAMPLES (default 200 for
# the checkout-links runs), SCHEMATHESIS_READS_MAX_EXAMPLES (default 30),
# SCHEMATHESIS_SEED (default 1, for reproducible runs), XDG_CACHE_HOME.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
links_0426="$repo/polar-api/checkout-links-2026-04.openapi.json"
links_2610="$repo/polar-api/checkout-links-2026-10.reconstructed.openapi.json"
reads_0426="$repo/polar-api/reads-2026-04.openapi.json"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/checkout-link-operator/venv-schemathesis"
cargo="${CARGO:-cargo}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-200}"
reads_max_examples="${SCHEMATHESIS_READS_MAX_EXAMPLES:-30}"
seed="${SCHEMATHESIS_SEED:-1}"
# The demo seed's Acme token with every scope (examples/emulator-seed.yaml).
token="polar_oat_AcmeDemoWriteToken00000000000000000013Difp9"

for spec in "$links_0426" "$links_2610" "$reads_0426"; do
  if [ ! -f "$spec" ]; then
    echo "schemathesis.sh: an OpenAPI document is missing: $spec" >&2
    exit 1
  fi
done

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

"$cargo" build --quiet -p polar-emulator --bin polar-emulator --manifest-path "$repo/Cargo.toml"
target_dir="$("$cargo" metadata --no-deps --format-version 1 --manifest-path "$repo/Cargo.toml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
emulator="$target_dir/debug/polar-emulator"

work="$(mktemp -d)"
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
  echo "schemathesis.sh: the emulator did not start" >&2
  exit 1
fi
echo "schemathesis.sh: emulator at $base"

# The 2026-04 documents with 2026-10's two new price types (see the top).
python3 - "$links_2610" "$links_0426" "$reads_0426" "$work" <<'PY'
import json, os, sys

newer = json.load(open(sys.argv[1]))["components"]["schemas"]
added = ["ProductPriceUnitBased", "ProductPriceMeteredTiers", "Tiers", "Tier", "TierType"]
for path in sys.argv[2:4]:
    doc = json.load(open(path))
    schemas = doc["components"]["schemas"]
    for name in added:
        schemas.setdefault(name, newer[name])
    one_of = schemas["ProductPrice"]["oneOf"]
    for name in ("ProductPriceUnitBased", "ProductPriceMeteredTiers"):
        ref = {"$ref": f"#/components/schemas/{name}"}
        if ref not in one_of:
            one_of.append(ref)
    mapping = schemas["ProductPrice"].get("discriminator", {}).get("mapping")
    if mapping is not None:
        mapping.setdefault("unit_based", "#/components/schemas/ProductPriceUnitBased")
        mapping.setdefault("metered_tiers", "#/components/schemas/ProductPriceMeteredTiers")
    out = os.path.join(sys.argv[4], os.path.basename(path))
    json.dump(doc, open(out, "w"))
PY

# Hooks for this run (written to the scratch directory):
# - Polar's spec lists only 2xx, 404 and 422. Polar also answers 400 when a
#   body is not UTF-8 (FastAPI: "There was an error parsing the body"), and
#   401/403/411/413/429 (see emulator/README.md). The run sends a valid token
#   and Content-Length, stays small and has no rate limit, so of those only
#   the 400 can be drawn: random-bytes bodies are kept to UTF-8.
# - Random UUIDs never name a seeded product, so every create would end in a
#   422. Product ids in generated bodies are swapped for seeded Acme products
#   (and some discount ids for a seeded discount), so links get created and
#   their 201/200 bodies, and the GET/PATCH/DELETE that follow, are checked.
# - Bodies with seats or units get the seat-based or the unit-based product
#   half of the time, so those locks are accepted too, not only refused.
# - Random ids in the reads' paths name a seeded product, discount or
#   organisation, or a bought order, half of the time, so their 200 bodies
#   are checked.
# - An explicit `null` for allow_discount_codes / require_billing_address on
#   PATCH is allowed by the spec, but Polar writes it to a NOT NULL column and
#   answers 500 (REFERENCE.md §3); the emulator does the same, so the hook
#   leaves those two keys out when they are null.
cat >"$work/polar_hooks.py" <<'PY'
import os

import schemathesis

PRODUCTS = [
    "a1000000-0000-4000-8000-000000000001",
    "a1000000-0000-4000-8000-000000000002",
    "a1000000-0000-4000-8000-000000000003",
    "a1000000-0000-4000-8000-000000000004",
    "a1000000-0000-4000-8000-000000000007",
]
PRICE = "b1000000-0000-4000-8000-000000000001"
DISCOUNT = "d1000000-0000-4000-8000-000000000001"
TEAM = "a1000000-0000-4000-8000-000000000004"
CREDITS = "a1000000-0000-4000-8000-000000000008"
SEEDED = {
    "/v1/products/{id}": PRODUCTS + [CREDITS, "a1000000-0000-4000-8000-000000000005"],
    "/v1/discounts/{id}": [DISCOUNT, "d1000000-0000-4000-8000-000000000002"],
    "/v1/organizations/{id}": ["11111111-1111-4111-8111-111111111111"],
}
# The orders bought before the reads run (make_orders below).
try:
    with open(os.path.join(os.path.dirname(__file__), "order_ids")) as f:
        SEEDED["/v1/orders/{id}"] = f.read().split()
except FileNotFoundError:
    pass


@schemathesis.hook
def filter_body(context, body):
    if isinstance(body, (bytes, bytearray)):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict):
        return body
    body = dict(body)
    pick = len(repr(sorted(body))) + len(body)
    products = body.get("products")
    if isinstance(products, list) and products:
        body["products"] = [PRODUCTS[pick % len(PRODUCTS)]]
    if isinstance(body.get("product_id"), str):
        body["product_id"] = PRODUCTS[pick % len(PRODUCTS)]
    if isinstance(body.get("product_price_id"), str):
        body["product_price_id"] = PRICE
    if isinstance(body.get("discount_id"), str) and pick % 2:
        body["discount_id"] = DISCOUNT
    if isinstance(products, list) and products and pick % 2:
        if isinstance(body.get("seats"), int):
            body["products"] = [TEAM]
        elif isinstance(body.get("units"), int):
            body["products"] = [CREDITS]
    for key in ("allow_discount_codes", "require_billing_address"):
        if key in body and body[key] is None:
            del body[key]
    return body


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    ids = SEEDED.get(context.operation.path if context.operation else "")
    if not ids or not isinstance(path_parameters, dict):
        return path_parameters
    value = path_parameters.get("id")
    if isinstance(value, str) and len(value) % 2:
        path_parameters = dict(path_parameters)
        path_parameters["id"] = ids[len(value) % len(ids)]
    return path_parameters
PY

# Run from the scratch directory so hypothesis' files stay out of the repo.
cd "$work"
status=0
summaries=()

# run NAME SPEC VERSION MAX_EXAMPLES [schemathesis options...]
run() {
  local name="$1" spec="$2" version="$3" examples="$4"
  shift 4
  local started=$SECONDS run_status=0
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"))' \
    "$base/__emulator/reset"
  rm -f "$work/order_ids"
  if [ -n "${prepare:-}" ]; then
    "$prepare"
  fi
  echo "schemathesis.sh: run $name: $(basename "$spec"), Polar-Version $version, $examples examples"
  set +e
  PYTHONPATH="$work" SCHEMATHESIS_HOOKS=polar_hooks "$venv/bin/schemathesis" run "$spec" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --header "Polar-Version: $version" \
    --checks response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$examples" \
    --seed "$seed" \
    --generation-database none \
    --request-timeout 10 \
    --no-color "$@" 2>&1 | tee "$work/$name.log"
  run_status=${PIPESTATUS[0]}
  set -e
  [ "$run_status" -eq 0 ] || status=1
  # What the emulator answered in this run, by route and status.
  python3 - "$base/__emulator/requests" "$name" <<'PY' || true
import collections, json, sys, urllib.request

with urllib.request.urlopen(sys.argv[1]) as r:
    log = json.load(r)
counts = collections.Counter((e["method"], e["route"] or e["path"], e["status"]) for e in log)
print(f"schemathesis.sh: {sys.argv[2]}: emulator responses (method, route, status: count)")
for (method, route, code), n in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
    print(f"  {method:6} {route:45} {code}: {n}")
PY
  local cases
  cases="$(grep -E '^ *[0-9]+ generated' "$work/$name.log" | tail -n 1 | sed 's/^ *//')"
  local verdict="passed"
  [ "$run_status" -eq 0 ] || verdict="FAILED (exit $run_status)"
  summaries+=("$name (Polar-Version $version): ${cases:-no test-case count}; $verdict in $((SECONDS - started)) s")
}

# Three Acme orders through one link (Ebook with Launch 20%, Pro Monthly with
# utm values, a partly refunded Ebook); their ids go to the hooks (order_ids).
make_orders() {
  python3 - "$base" "$token" "$work/order_ids" <<'PY'
import json, sys, urllib.request

base, token, out = sys.argv[1:4]


def call(method, path, body=None, auth=True):
    headers = {"Content-Type": "application/json", "Polar-Version": "2026-04"}
    if auth:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req) as r:
        return json.load(r)


link = call("POST", "/v1/checkout-links/", {
    "payment_processor": "stripe",
    "products": ["a1000000-0000-4000-8000-000000000001", "a1000000-0000-4000-8000-000000000002"],
    "discount_id": "d1000000-0000-4000-8000-000000000001",
    "metadata": {"campaign": "spring"},
})
buy = f"/__emulator/checkout-links/{link['id']}/buy"
orders = [
    call("POST", buy, {}, auth=False),
    call("POST", buy, {"product_id": "a1000000-0000-4000-8000-000000000002",
                       "query": {"utm_source": "newsletter", "reference_id": "r1"}}, auth=False),
    call("POST", buy, {}, auth=False),
]
call("POST", f"/__emulator/orders/{orders[2]['id']}/refund", {"amount": 100}, auth=False)
with open(out, "w") as f:
    f.write("\n".join(o["id"] for o in orders))
PY
}

run links-2026-04 "$work/$(basename "$links_0426")" 2026-04 "$max_examples"
run links-2026-10 "$links_2610" 2026-10 "$max_examples"
prepare=make_orders run reads-2026-04 "$work/$(basename "$reads_0426")" 2026-04 "$reads_max_examples"

echo "schemathesis.sh: summary"
for line in "${summaries[@]}"; do
  echo "  $line"
done
exit "$status"
