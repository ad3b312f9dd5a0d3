#!/usr/bin/env bash
# Renders the install of config/default with the manager image IMG
# (repository:tag), through a throw-away overlay under bin/ so that config/
# is never edited. --without-crds leaves the CRDs out (undeploy must never
# delete them: that would delete every policy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
img=${IMG:-loopguard:latest}
repo=${img%:*}; tag=${img##*:}
[[ $repo == "$img" ]] && tag=latest
dir=$root/bin/install-overlay
rm -rf "$dir"; mkdir -p "$dir"
{
  printf 'resources:\n- ../../config/default\nimages:\n- name: loopguard\n  newName: %s\n  newTag: %s\n' "$repo" "$tag"
  if [[ ${1:-} == --without-crds ]]; then
    printf 'patches:\n'
    for crd in loopbackservices.loopguard.io clusterloopbackservices.loopguard.io; do
      printf -- '- patch: |\n    $patch: delete\n    apiVersion: apiextensions.k8s.io/v1\n    kind: CustomResourceDefinition\n    metadata:\n      name: %s\n' "$crd"
    done
  fi
} > "$dir/kustomization.yaml"
cd "$root" && go tool kustomize build "$dir"
