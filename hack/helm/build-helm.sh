#!/usr/bin/env bash
# Builds the Helm pinned in hack/helm/tools/go.mod into bin/helm (or $1),
# with the version and default Kubernetes version Helm's own Makefile sets
# (without them `helm template` assumes Kubernetes v1.20).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/bin/helm}
[[ $out == /* ]] || out=$PWD/$out # relative to the caller, not to the tool module
mkdir -p "$(dirname "$out")"
cd "$root/hack/helm/tools"
helm_ver=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
k8s_ver=$(go list -m -f '{{.Version}}' k8s.io/client-go) # v0.MINOR.PATCH
k8s_minor=$(echo "$k8s_ver" | cut -d. -f2)
ldflags="-X helm.sh/helm/v3/internal/version.version=$helm_ver"
for pkg in pkg/lint/rules pkg/chartutil; do
	ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
go build -ldflags "$ldflags" -o "$out" helm.sh/helm/v3/cmd/helm
"$out" version --short
