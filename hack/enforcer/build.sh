#!/usr/bin/env bash
# Builds the dev node's NetworkPolicy enforcer (this directory's module)
# into bin/enforcer, only when the binary is missing or older than a source
# file, go.mod or go.sum: a warm `hack/dev.sh up` does not rebuild it (a cold
# build takes a few minutes on 2 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src="$root/hack/enforcer"
out="$root/bin/enforcer"
if [[ -x $out && -z $(find "$src" -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$out") ]]; then
  echo "✓ enforcer (cached)"
  exit 0
fi
start=$SECONDS
echo "… building the enforcer (hack/enforcer; the first build takes minutes)"
mkdir -p "$root/bin"
(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "✓ enforcer built in $((SECONDS - start))s"
