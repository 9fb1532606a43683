# checkout-link-operator — entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
REPO := $(abspath .)
LOCAL := $(REPO)/.local
# The Go-built tools (etcd, kube-apiserver, kubectl, helm, kubeconform) live in a versioned
# cache outside the repository; hack/build-tools.sh builds what is missing and prints the dir.
TOOLS_BIN = $(shell bash hack/build-tools.sh | tail -n 1)

include emulator/emulator.mk

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: demo
demo: prereqs ## the main job: local control plane + emulator + operator + example links (Ctrl-C stops)
	@bash hack/demo.sh

.PHONY: test
test: prereqs toolchain tools ## everything CI runs: fmt, clippy, unit, CRD, emulator, integration, chart, GitOps tests
	@echo "==> no tracked file refers to a folder outside the repository"
	@bash hack/check-self-contained.sh
	@echo "==> cargo fmt --check"
	$(CARGO) fmt --all -- --check
	@echo "==> cargo clippy -D warnings"
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@echo "==> CRD files are up to date"
	@$(MAKE) --no-print-directory crds-check
	@echo "==> cargo test (unit, CRD golden + admission, emulator, integration against a real apiserver)"
	TESTENV_BIN_DIR="$$(bash hack/build-tools.sh etcd kube-apiserver kubectl kube-controller-manager | tail -n 1)" \
	  $(CARGO) test --workspace --locked
	@echo "==> schemathesis against the emulator"
	@$(MAKE) --no-print-directory schemathesis
	@echo "==> Polar's official Python SDK against the emulator"
	@$(MAKE) --no-print-directory polar-sdk

.PHONY: prereqs
prereqs: ## check the toolchains make cannot install by itself (one line per missing piece)
	@bash hack/prereqs.sh

.PHONY: toolchain
toolchain: ## make sure rustfmt and clippy are installed
	@rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

.PHONY: tools
tools: ## build etcd, kube-apiserver, kubectl, helm, kubeconform from pinned Go modules (cached)
	@bash hack/build-tools.sh >/dev/null

.PHONY: crds
crds: ## regenerate crds/ (and the Helm chart's copy) from src/crd.rs
	$(CARGO) run --quiet --bin crdgen > crds/checkoutlinks.polar.sh.yaml
	$(CARGO) run --quiet --bin crdgen policy > crds/checkoutlinks.polar.sh-metadata-policy.yaml
	cp crds/checkoutlinks.polar.sh.yaml crds/checkoutlinks.polar.sh-metadata-policy.yaml \
	  charts/checkout-link-operator/files/crds/

.PHONY: crds-check
crds-check:
	@diff -u crds/checkoutlinks.polar.sh.yaml <($(CARGO) run --quiet --bin crdgen) \
	  || { echo "crds/ is stale: run 'make crds'"; exit 1; }
	@diff -u crds/checkoutlinks.polar.sh-metadata-policy.yaml <($(CARGO) run --quiet --bin crdgen policy) \
	  || { echo "crds/ is stale: run 'make crds'"; exit 1; }
	@diff -r crds charts/checkout-link-operator/files/crds \
	  || { echo "charts/checkout-link-operator/files/crds is stale: run 'make crds'"; exit 1; }

.PHONY: cluster-up
cluster-up: tools ## start a local control plane in the background; kubeconfig in .local/kubeconfig
	@bash hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## stop the local control plane started by cluster-up
	@bash hack/cluster.sh down

.PHONY: bench
bench: prereqs tools ## the operator on every DESIGN.md §7 figure (BENCH_N=10000 for the design size), then the emulator alone
	@echo "==> operator benchmark (N=$${BENCH_N:-1000}; progress on stderr, table on stdout)"
	TESTENV_BIN_DIR="$$(bash hack/build-tools.sh etcd kube-apiserver kubectl kube-controller-manager | tail -n 1)" \
	  $(CARGO) bench --locked --bench operator
	@$(MAKE) --no-print-directory bench-emulator

.PHONY: faults
faults: prereqs tools ## the fault suite: kills, a flaky Polar, apiserver restarts, namespace deletions, bad manifests; prints one table
	@echo "==> fault suite (progress on stderr, table on stdout)"
	TESTENV_BIN_DIR="$$(bash hack/build-tools.sh etcd kube-apiserver kubectl kube-controller-manager | tail -n 1)" \
	  $(CARGO) bench --locked --bench faults
