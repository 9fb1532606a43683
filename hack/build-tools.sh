#!/usr/bin/env bash
# Builds kube-apiserver, kubectl, etcd, helm and kubeconform from pinned Go modules into a
# versioned cache outside the repository, and reuses that cache when it is already complete.
# Prints the binary directory on the last line of stdout; progress goes to stderr.
#
#   hack/build-tools.sh            build what is missing, print the bin dir
#   TOOLS_CACHE=/path hack/...     choose the cache root (default ~/.cache/checkout-link-operator)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

root=${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/checkout-link-operator}
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_kubeconform-${KUBECONFORM_VERSION}"
bin="$root/tools/$key/bin"
work="$root/tools/$key/work"
mkdir -p "$bin" "$work"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
log() { printf '[build-tools] %s\n' "$*" >&2; }
step() { # step NAME: time a build step
  local start=$SECONDS; "$@"; log "done in $((SECONDS - start)) s"
}

staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller"

build_kubernetes() {
  local mod="$work/kubernetes" minor="${KUBERNETES_VERSION#v1.}" # 35.7
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  go mod init local/kube-tools >/dev/null 2>&1
  go mod edit -go=1.25.0 -godebug=default=go1.25
  for m in $staging; do go mod edit -replace="k8s.io/$m=k8s.io/$m@v0.$minor"; done
  log "resolving k8s.io/kubernetes@$KUBERNETES_VERSION (module download, first run only)"
  # Pin the module by hand: `go get pkg@version` asks the proxy for the package path as a
  # module (403 here), and `go get -tool pkg` without a version would upgrade to v1.36.
  go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION" \
    -tool=k8s.io/kubernetes/cmd/kube-apiserver -tool=k8s.io/kubernetes/cmd/kubectl
  go mod tidy >&2
  local ld="-s -w"
  local v
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor%%.*}"
    ld="$ld -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
  done
  log "compiling kube-apiserver $KUBERNETES_VERSION (the long step: 10-20 min on 2 cores)"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
  log "compiling kubectl $KUBERNETES_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$bin/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  mv "$bin/kubectl.tmp" "$bin/kubectl"
}

build_etcd() {
  local mod="$work/etcd"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  go mod init local/etcd-tools >/dev/null 2>&1
  log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  log "compiling etcd $ETCD_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_helm() {
  log "compiling helm $HELM_VERSION"
  local mod="$work/helm"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  go mod init local/helm-tools >/dev/null 2>&1
  go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    -o "$bin/helm.tmp" helm.sh/helm/v3/cmd/helm
  mv "$bin/helm.tmp" "$bin/helm"
}

build_kubeconform() {
  log "compiling kubeconform $KUBECONFORM_VERSION"
  CGO_ENABLED=0 GOBIN="$work/gobin" go install -trimpath -ldflags "-s -w" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  mv "$work/gobin/kubeconform" "$bin/kubeconform"
}

want=${*:-etcd kube-apiserver kubectl helm kubeconform}
for tool in $want; do
  if [ -x "$bin/$tool" ]; then continue; fi
  case $tool in
    etcd) step build_etcd ;;
    kube-apiserver|kubectl) step build_kubernetes ;;
    helm) step build_helm ;;
    kubeconform) step build_kubeconform ;;
    *) log "unknown tool $tool"; exit 2 ;;
  esac
done
log "tools ready in $bin"
echo "$bin"
