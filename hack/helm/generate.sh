#!/usr/bin/env bash
# Regenerates the Helm chart in dist/chart from the kustomize install in
# config/ (the one source of truth): config/default,
# config/overlays/cert-manager for certManager.enabled, and config/agent
# (the node agent and its admission policy) for agent.enabled and
# config/overlays/webhook-networkpolicy for webhook.networkPolicy.enabled.
# Deterministic:
# re-running it on an unchanged config/ rewrites identical files, so
#   hack/helm/generate.sh && git diff --exit-code dist/chart
# fails when the chart is stale. An optional argument writes the chart
# elsewhere (test/helm compares such a copy with dist/chart).
set -euo pipefail
out=${1:-dist/chart}
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go tool kustomize build config/default >"$tmp/default.yaml"
go tool kustomize build config/overlays/cert-manager >"$tmp/cert-manager.yaml"
go tool kustomize build config/agent >"$tmp/agent.yaml"
go tool kustomize build config/overlays/webhook-networkpolicy >"$tmp/webhook-netpol.yaml"
go run ./hack/helm/gen -default "$tmp/default.yaml" -cert-manager "$tmp/cert-manager.yaml" -agent "$tmp/agent.yaml" -webhook-netpol "$tmp/webhook-netpol.yaml" -out "$out"
echo "$out generated"
