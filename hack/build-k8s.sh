#!/usr/bin/env bash
# Builds the Kubernetes binaries of the local dev cluster from the Go module
# proxy into bin/k8s/<version>/. A binary is rebuilt only when it is missing,
# so a pinned-version change (a new directory) is the only thing that
# triggers a cold build (~8 min on 2 cores for the control plane, ~5 more for
# the node components).
#
#   hack/build-k8s.sh [target...]
#
# Targets: etcd kube-apiserver kube-controller-manager kubectl (the default,
# "control-plane"), kube-scheduler kubelet kube-proxy ("node": what a real
# node with running pods needs), or a group name: control-plane, node, all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/k8s"

control_plane=(etcd kube-apiserver kube-controller-manager kubectl)
node=(kube-scheduler kubelet kube-proxy)

# Expand group names and reject unknown targets before any slow go command.
targets=()
for t in "${@:-control-plane}"; do
  case $t in
    control-plane) targets+=("${control_plane[@]}") ;;
    node) targets+=("${node[@]}") ;;
    all) targets+=("${control_plane[@]}" "${node[@]}") ;;
    etcd | kube-apiserver | kube-controller-manager | kubectl | kube-scheduler | kubelet | kube-proxy) targets+=("$t") ;;
    *)
      echo "build-k8s.sh: unknown target '$t' (known: ${control_plane[*]} ${node[*]}, control-plane, node, all)" >&2
      exit 2
      ;;
  esac
done

version=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' <(cd "$mod" && go list -m all))
etcd_version=$(cd "$mod" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
out="$root/bin/k8s/$version"
mkdir -p "$out"

minor=${version#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor \
 -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z \
 -X $pkg.gitCommit=0000000000000000000000000000000000000000"

build() { # name package
  local name=$1 p=$2
  if [[ -x "$out/$name" ]]; then echo "  ✓ $name (cached)"; return; fi
  local start=$SECONDS
  echo "  … building $name from $p (first build takes minutes)"
  # CGO_ENABLED=0 for every binary, the kubelet included: static binaries
  # that run on any Linux, as upstream's release builds do.
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$p")
  mv "$out/$name.tmp" "$out/$name"
  echo "  ✓ $name built in $((SECONDS - start))s"
}

echo "local cluster binaries: Kubernetes $version, etcd $etcd_version → ${out#"$root"/}"
declare -A seen=()
for t in "${targets[@]}"; do
  [[ -z ${seen[$t]:-} ]] || continue
  seen[$t]=1
  case $t in
    etcd) build etcd ./etcd ;;
    *) build "$t" "k8s.io/kubernetes/cmd/$t" ;;
  esac
done
ln -sfn "$version" "$root/bin/k8s/current"
