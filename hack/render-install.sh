#!/usr/bin/env bash
# Renders the install of config/default with the manager image IMG
# (repository:tag), through a throw-away overlay under bin/ so that config/
# is never edited. --without-crds leaves the CRDs out (undeploy must never
# delete them: that would delete every policy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
img=${IMG:-loopguard:latest}
# The tag is what follows the last colon after the last slash (a registry
# may have a port: registry.example:5000/loopguard).
last=${img##*/}
if [[ $last == *:* ]]; then repo=${img%:*}; tag=${img##*:}; else repo=$img; tag=latest; fi
mkdir -p "$root/bin"
dir=$(mktemp -d "$root/bin/install-overlay.XXXXXX") # one per run: runs may overlap
trap 'rm -rf "$dir"' EXIT
{
  # Quoted: a numeric tag (1.10, 20261201) is a string, not a number.
  printf 'resources:\n- ../../config/default\nimages:\n- name: loopguard\n  newName: "%s"\n  newTag: "%s"\n' "$repo" "$tag"
  if [[ ${1:-} == --without-crds ]]; then
    printf 'patches:\n'
    # Every CRD of config/crd/bases (group_plural.yaml names plural.group).
    for f in "$root"/config/crd/bases/*.yaml; do
      b=$(basename "$f" .yaml); crd=${b#*_}.${b%%_*}
      printf -- '- patch: |\n    $patch: delete\n    apiVersion: apiextensions.k8s.io/v1\n    kind: CustomResourceDefinition\n    metadata:\n      name: %s\n' "$crd"
    done
  fi
} > "$dir/kustomization.yaml"
cd "$root" && go tool kustomize build "$dir"
