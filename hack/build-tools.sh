#!/usr/bin/env bash
# Builds kube-apiserver, kubectl, kube-controller-manager, etcd, helm and kubeconform from pinned
# Go modules into a versioned cache outside the repository, and builds only the binaries that
# are missing from it.
# Prints the binary directory on the last line of stdout; progress goes to stderr.
#
#   hack/build-tools.sh            build what is missing, print the bin dir
#   hack/build-tools.sh etcd kube-apiserver   only these (if missing)
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

# The binaries built from k8s.io/kubernetes, all from one wrapper module.
kubernetes_tools="kube-apiserver kubectl kube-controller-manager"

# go.mod of module directory $1 as JSON without blanks ("" when there is none).
module_json() { (cd "$1" 2>/dev/null && go mod edit -json 2>/dev/null | tr -d ' \t\n') || true; }

# The wrapper module: requires k8s.io/kubernetes at KUBERNETES_VERSION, with every staging
# module replaced by its published v0.N.M. Reused when it is already there for this version
# (a missing binary then costs only its own compile); recreated otherwise. It lives in $work,
# never in $bin, so recreating it leaves the binaries already built alone.
kubernetes_module() {
  local mod="$work/kubernetes" minor="${KUBERNETES_VERSION#v1.}" # 35.7
  local t
  if [ ! -s "$mod/go.sum" ] ||
    [[ $(module_json "$mod") != *"\"Path\":\"k8s.io/kubernetes\",\"Version\":\"$KUBERNETES_VERSION\""* ]]; then
    rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
    go mod init local/kube-tools >/dev/null 2>&1
    go mod edit -go=1.25.0 -godebug=default=go1.25
    for m in $staging; do go mod edit -replace="k8s.io/$m=k8s.io/$m@v0.$minor"; done
    log "resolving k8s.io/kubernetes@$KUBERNETES_VERSION (module download, first run only)"
    # Pin the module by hand: `go get pkg@version` asks the proxy for the package path as a
    # module (403 here), and `go get -tool pkg` without a version would upgrade to v1.36.
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
    for t in $kubernetes_tools; do go mod edit -tool="k8s.io/kubernetes/cmd/$t"; done
    go mod tidy >&2
  fi
  cd "$mod"
  # A wrapper made before a tool joined the list: add its tool line (same module, same
  # versions; tidy only adds the go.sum lines of the packages the new tool imports).
  for t in $kubernetes_tools; do
    if [[ $(module_json "$mod") != *"\"Path\":\"k8s.io/kubernetes/cmd/$t\""* ]]; then
      go mod edit -tool="k8s.io/kubernetes/cmd/$t"
      log "adding $t to the wrapper module"
      go mod tidy >&2
    fi
  done
}

build_kubernetes() { # build_kubernetes TOOL: one binary of k8s.io/kubernetes/cmd
  local tool=$1 minor="${KUBERNETES_VERSION#v1.}"
  kubernetes_module
  local ld="-s -w"
  local v
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor%%.*}"
    ld="$ld -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
  done
  case $tool in
    kube-apiserver) log "compiling kube-apiserver $KUBERNETES_VERSION (the long step: 10-20 min on 2 cores)" ;;
    *) log "compiling $tool $KUBERNETES_VERSION" ;;
  esac
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$bin/$tool.tmp" "k8s.io/kubernetes/cmd/$tool"
  mv "$bin/$tool.tmp" "$bin/$tool"
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

want=${*:-etcd kube-apiserver kubectl kube-controller-manager helm kubeconform}
locked=
for tool in $want; do
  if [ -x "$bin/$tool" ]; then continue; fi
  if [ -z "$locked" ]; then
    # Several test runs may call this at once: one builds, the others wait and then reuse.
    exec 9>"$root/tools/$key/build.lock"
    flock 9
    locked=1
    if [ -x "$bin/$tool" ]; then continue; fi
  fi
  case $tool in
    etcd) step build_etcd ;;
    kube-apiserver|kubectl|kube-controller-manager) step build_kubernetes "$tool" ;;
    helm) step build_helm ;;
    kubeconform) step build_kubeconform ;;
    *) log "unknown tool $tool"; exit 2 ;;
  esac
done
log "tools ready in $bin"
echo "$bin"
