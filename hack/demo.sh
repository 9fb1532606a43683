#!/usr/bin/env bash
# make demo: a local control plane, the Polar emulator, the operator, and example CheckoutLinks.
#
#   bash hack/demo.sh                        runs until Ctrl-C, then cleans everything up
#   DEMO_EXIT_AFTER_READY=1 bash hack/demo.sh   exits (cleanly) once the links are Ready
#
# Environment: DEMO_EMULATOR_ADDR (default 127.0.0.1:8787), DEMO_METRICS_ADDR (default
# 127.0.0.1:8080). Logs: .local/emulator.log, .local/operator.log, .local/cluster/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
local_dir=$repo/.local
mkdir -p "$local_dir"
emulator_addr=${DEMO_EMULATOR_ADDR:-127.0.0.1:8787}
metrics_addr=${DEMO_METRICS_ADDR:-127.0.0.1:8080}
namespace=shop
secret=polar-credentials

step() { printf '\n==> %s\n' "$*"; }

emulator_pid=""
operator_pid=""
cluster_started=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  step "cleaning up"
  if [ -n "$operator_pid" ] && kill -0 "$operator_pid" 2>/dev/null; then
    kill -TERM "$operator_pid" 2>/dev/null || true
    wait "$operator_pid" 2>/dev/null || true
    echo "operator stopped"
  fi
  if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    echo "emulator stopped"
  fi
  if [ -n "$cluster_started" ]; then
    bash hack/cluster.sh down || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

step "building the operator, the emulator and the control-plane launcher (cargo build)"
cargo build -p checkout-link-operator -p polar-emulator -p testenv

step "building or locating etcd, kube-apiserver and kubectl (cached after the first run)"
bin=$(bash hack/build-tools.sh etcd kube-apiserver kubectl | tail -n 1)
kubeconfig=$local_dir/kubeconfig
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

step "starting the control plane (etcd + kube-apiserver, CheckoutLink CRD installed)"
if [ -f "$local_dir/cluster.pid" ] && kill -0 "$(cat "$local_dir/cluster.pid")" 2>/dev/null; then
  echo "reusing the control plane that is already running"
else
  cluster_started=1
  bash hack/cluster.sh up
fi

step "starting polar-emulator on $emulator_addr"
if port_open "$emulator_addr"; then
  echo "something already listens on $emulator_addr; stop it or set DEMO_EMULATOR_ADDR" >&2
  exit 1
fi
target/debug/polar-emulator --listen "$emulator_addr" --seed examples/emulator-seed.yaml \
  --url-template '{base_url}/v1/checkout-links/{client_secret}/redirect' \
  >"$local_dir/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 1 100); do
  port_open "$emulator_addr" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$local_dir/emulator.log" >&2; exit 1; }
  sleep 0.1
done
port_open "$emulator_addr" || { echo "the emulator did not start" >&2; exit 1; }
echo "emulator ready (log: .local/emulator.log)"

step "creating namespace $namespace and the credentials Secret $namespace/$secret"
# The first organisation access token of the seed (Acme, every scope the operator needs).
token=$(awk '/^tokens:/ {t=1} t && $1 == "-" && $2 == "token:" && $3 ~ /^polar_oat_/ {print $3; exit}' examples/emulator-seed.yaml)
[ -n "$token" ] || { echo "no organisation token found in examples/emulator-seed.yaml" >&2; exit 1; }
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$namespace" create secret generic "$secret" \
  --from-literal=token="$token" --from-literal=server="http://$emulator_addr" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
echo "Secret $namespace/$secret holds the token and server http://$emulator_addr"

step "starting the operator (log: .local/operator.log; metrics on http://$metrics_addr/metrics)"
target/debug/checkout-link-operator --kubeconfig "$kubeconfig" \
  --default-credentials-secret "$namespace/$secret" --metrics-addr "$metrics_addr" \
  --campaign-results --resync-interval 15s \
  >"$local_dir/operator.log" 2>&1 &
operator_pid=$!
sleep 0.5
kill -0 "$operator_pid" 2>/dev/null || { cat "$local_dir/operator.log" >&2; exit 1; }

step "applying examples/checkoutlinks.yaml"
kubectl apply -f examples/checkoutlinks.yaml

step "waiting for every CheckoutLink to be Ready"
if ! kubectl wait --for=condition=Ready checkoutlink --all -n "$namespace" --timeout=120s; then
  kubectl get checkoutlinks -n "$namespace" -o wide || true
  echo "--- last lines of .local/operator.log" >&2
  tail -n 40 "$local_dir/operator.log" >&2 || true
  exit 1
fi

step "kubectl get checkoutlinks -n $namespace -o wide"
kubectl get checkoutlinks -n "$namespace" -o wide

step "share URLs (status.shareUrl)"
kubectl get checkoutlinks -n "$namespace" \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\n    "}{.status.shareUrl}{"\n"}{end}'

step "campaign results: three purchases through the example links (the emulator's buy control)"
buy() { # link name, JSON body
  local id
  id=$(kubectl get checkoutlink "$1" -n "$namespace" -o jsonpath='{.status.id}')
  curl -fsS -X POST -H 'content-type: application/json' -d "$2" \
    "http://$emulator_addr/__emulator/checkout-links/$id/buy" >/dev/null
  echo "    bought through $1 $2"
}
buy launch-email '{"query": {"utm_source": "newsletter"}}'
buy launch-email '{}'
buy ebook-no-codes '{}'
echo "waiting for the next orders sweep (one per organisation per resync interval, 15 s here)"
counted=""
for _ in $(seq 1 120); do
  a=$(kubectl get checkoutlink launch-email -n "$namespace" -o jsonpath='{.status.results.orders}')
  b=$(kubectl get checkoutlink ebook-no-codes -n "$namespace" -o jsonpath='{.status.results.orders}')
  if [ "$a" = 2 ] && [ "$b" = 1 ]; then counted=1; break; fi
  sleep 1
done
if [ -z "$counted" ]; then
  echo "the orders were not counted (launch-email: ${a:-none}, ebook-no-codes: ${b:-none})" >&2
  tail -n 40 "$local_dir/operator.log" >&2 || true
  exit 1
fi
kubectl get checkoutlinks -n "$namespace" -o wide
kubectl get checkoutlinks -n "$namespace" \
  -o jsonpath='{range .items[*]}{"    "}{.metadata.name}{": "}{.status.results.summary}{" by utm_source: "}{.status.results.utmSources}{"\n"}{end}'

step "one manifest, two environments (examples/two-environments): Acme plays sandbox, Globex production"
globex=$(awk '$1 == "-" && $2 == "token:" && $3 ~ /^polar_oat_Globex/ {print $3; exit}' examples/emulator-seed.yaml)
for env in sandbox production; do
  env_token=$token
  [ "$env" = production ] && env_token=$globex
  kubectl create namespace "shop-$env" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n "shop-$env" create secret generic "polar-$env" \
    --from-literal=token="$env_token" --from-literal=server="http://$emulator_addr" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -k "examples/two-environments/$env"
done
for env in sandbox production; do
  if ! kubectl wait --for=condition=Ready checkoutlink --all -n "shop-$env" --timeout=120s; then
    kubectl get checkoutlinks -n "shop-$env" -o wide || true
    tail -n 40 "$local_dir/operator.log" >&2 || true
    exit 1
  fi
  echo "shop-$env: the same manifest, this organisation's own products (status.resolved):"
  kubectl get checkoutlinks -n "shop-$env" \
    -o jsonpath='{range .items[*]}{"    "}{.metadata.name}{": "}{.status.resolved.products}{" sellable="}{.status.conditions[?(@.type=="Sellable")].status}{"\n"}{end}'
  echo "shop-$env: ConfigMap storefront, for the website:"
  kubectl get configmap storefront -n "shop-$env" -o jsonpath='{"    "}{.data}{"\n"}'
done

if [ "${DEMO_EXIT_AFTER_READY:-}" = "1" ]; then
  step "DEMO_EXIT_AFTER_READY=1: done"
  exit 0
fi

cat <<MSG

The demo is running. Try, in another shell:
  export KUBECONFIG=$kubeconfig PATH=$bin:\$PATH
  kubectl get checkoutlinks -n $namespace -w
  kubectl patch checkoutlink launch-email -n $namespace --type merge -p '{"spec":{"label":"Launch v2"}}'
  kubectl delete checkoutlink ebook-no-codes -n $namespace
  kubectl get events -n $namespace
Press Ctrl-C to stop everything.
MSG
while kill -0 "$operator_pid" 2>/dev/null && kill -0 "$emulator_pid" 2>/dev/null; do
  sleep 1
done
echo "the operator or the emulator stopped unexpectedly; see .local/*.log" >&2
exit 1
