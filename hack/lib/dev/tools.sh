# shellcheck shell=bash
# The dev cluster's tools: kubectl, the k() wrapper, bin/devtool and the
# images tool. Sourced by hack/dev.sh (after hack/lib/common.sh and hack/lib/node.sh),
# never executed: functions only.

kubectl_bin() {
  if [[ -x $K8S_BIN/kubectl ]]; then
    echo "$K8S_BIN/kubectl"
  else
    command -v kubectl || die "no kubectl: neither $K8S_BIN/kubectl nor one on PATH"
  fi
}

k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

build_tools() {
  local t0
  step "binaries"
  t0=$(now_ms)
  "$ROOT/hack/build-k8s.sh" | sed 's/^/  /'
  KUBECTL=$(kubectl_bin)
  # One build instead of a go run per call: each go run relinks.
  go build -o "$DEVTOOL" ./hack/devtool
  ok "binaries ready ($(elapsed "$t0"))"
}
