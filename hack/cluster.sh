#!/usr/bin/env bash
# make cluster-up / cluster-down: a long-running local control plane for people.
# State, logs and the kubeconfig live in .local/ (git-ignored):
#   .local/kubeconfig        admin kubeconfig (export KUBECONFIG=$PWD/.local/kubeconfig)
#   .local/cluster/          etcd data, certificates, etcd.log, kube-apiserver.log
#   .local/cluster.pid       pid of the testenv process that owns etcd and kube-apiserver
set -euo pipefail
cd "$(dirname "$0")/.."
local_dir=$PWD/.local
pidfile=$local_dir/cluster.pid
kubeconfig=$local_dir/kubeconfig

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  up)
    if running; then
      echo "control plane already running (pid $(cat "$pidfile")); KUBECONFIG=$kubeconfig"
      exit 0
    fi
    bin=$(bash hack/build-tools.sh etcd kube-apiserver kubectl | tail -n 1)
    echo "==> building testenv"
    cargo build --quiet -p testenv
    mkdir -p "$local_dir"
    rm -f "$kubeconfig"
    echo "==> starting etcd + kube-apiserver (logs: .local/cluster/*.log)"
    TESTENV_BIN_DIR=$bin nohup target/debug/testenv --dir "$local_dir/cluster" \
      --kubeconfig "$kubeconfig" --crds crds >"$local_dir/testenv.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 240); do
      if [ -s "$kubeconfig" ]; then break; fi
      if ! running; then echo "the control plane failed to start:"; tail -n 30 "$local_dir/testenv.log"; exit 1; fi
      sleep 0.5
    done
    [ -s "$kubeconfig" ] || { echo "timed out waiting for the control plane"; exit 1; }
    echo "control plane ready; CheckoutLink CRD installed"
    echo "  export KUBECONFIG=$kubeconfig"
    echo "  kubectl ($bin/kubectl) get checkoutlinks -A"
    ;;
  down)
    if running; then
      kill "$(cat "$pidfile")"
      for _ in $(seq 1 40); do running || break; sleep 0.25; done
      echo "control plane stopped"
    else
      echo "no control plane running"
    fi
    rm -f "$pidfile" "$kubeconfig"
    ;;
  *) echo "usage: hack/cluster.sh up|down"; exit 2 ;;
esac
