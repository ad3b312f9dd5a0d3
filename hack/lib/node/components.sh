# shellcheck shell=bash
# The dev node's components: containerd, the kubelet, kube-scheduler,
# kube-proxy and the NetworkPolicy enforcer; waiting for the Node to be
# Ready. Sourced by hack/lib/node.sh, never executed: functions only.

# config_hash FILE...: a running component restarts when its config changes.
config_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ctr_ ARGS...: ctr on our containerd, bounded (a wedged containerd must
# not hang 'down').
ctr_() { timeout 10 ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# NO_PULL_PROXY: containerd's only outbound traffic would be image pulls
# (a pod naming an image that was not imported, e.g. registry.invalid/x in
# the e2e tests). Sending every registry request to a closed loopback port
# makes such a pull fail at once, and since a proxied request is never
# resolved locally, not even a DNS query leaves the machine.
NO_PULL_PROXY=http://127.0.0.1:9

start_containerd() {
  local bin env_bin
  bin=$(command -v containerd)
  env_bin=$(command -v env)
  mkdir -p "$NODE_STATE/containerd"
  FP_EXTRA="$(config_hash "$NODE_CONF/containerd.toml") $(stat -c '%n %s %Y' "$(readlink -f "$bin")")" \
    ensure_started containerd "" "$env_bin" \
    HTTP_PROXY="$NO_PULL_PROXY" HTTPS_PROXY="$NO_PULL_PROXY" http_proxy="$NO_PULL_PROXY" https_proxy="$NO_PULL_PROXY" \
    NO_PROXY= no_proxy= \
    "$bin" --config "$NODE_CONF/containerd.toml"
  wait_until "containerd on ${CONTAINERD_SOCK#"$ROOT"/}" 30 containerd \
    timeout 5 ctr --address "$CONTAINERD_SOCK" version
}

import_images() {
  local out
  out=$("$IMAGES_TOOL" build --repo "$ROOT" --out "$IMAGES_OUT" --address "$CONTAINERD_SOCK" --skip-go-build 2>&1) ||
    die "importing the node images into containerd failed:"$'\n'"$out"
  indent <<<"$out"
}

start_kubelet() {
  # The API server reaches the kubelet as kube-apiserver-kubelet-client.
  k apply --server-side --force-conflicts --field-manager=loopguard-dev --request-timeout=30s -f "$ROOT/hack/node/rbac.yaml" >/dev/null ||
    die "applying hack/node/rbac.yaml failed"
  FP_EXTRA=$(config_hash "$NODE_CONF/kubelet.yaml" "$KUBELET_KUBECONFIG") \
    ensure_started kubelet "$KUBELET_PORT $KUBELET_HEALTHZ_PORT" "$K8S_BIN/kubelet" \
    --config="$NODE_CONF/kubelet.yaml" \
    --kubeconfig="$KUBELET_KUBECONFIG" \
    --root-dir="$NODE_STATE/kubelet" \
    --cert-dir="$NODE_STATE/kubelet/pki" \
    --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP" \
    --v=1
  wait_until "kubelet /healthz on 127.0.0.1:$KUBELET_HEALTHZ_PORT" 60 kubelet \
    "$DEVTOOL" probe --url "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" --status 200
}

start_scheduler() {
  FP_EXTRA=$(config_hash "$SCHEDULER_KUBECONFIG") \
    ensure_started kube-scheduler "$SCHEDULER_PORT" "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$SCHEDULER_KUBECONFIG" \
    --authentication-kubeconfig="$SCHEDULER_KUBECONFIG" \
    --authorization-kubeconfig="$SCHEDULER_KUBECONFIG" \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHEDULER_PORT" \
    --cert-dir="$DEV/kube-scheduler" \
    --leader-elect=false
}

start_kube_proxy() {
  FP_EXTRA=$(config_hash "$NODE_CONF/kube-proxy.yaml" "$PROXY_KUBECONFIG") \
    ensure_started kube-proxy "$PROXY_METRICS_PORT $PROXY_HEALTHZ_PORT" "$K8S_BIN/kube-proxy" \
    --config="$NODE_CONF/kube-proxy.yaml" --v=1
  wait_until "kube-proxy ($NODE_PROXY_MODE) /healthz on 127.0.0.1:$PROXY_HEALTHZ_PORT" 60 kube-proxy \
    "$DEVTOOL" probe --url "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" --status 200
}

# start_enforcer: the NetworkPolicy enforcer (hack/enforcer, see
# docs/testing.md), as admin: it reads pods, namespaces, nodes and
# (Admin)NetworkPolicies cluster-wide, and it is test infrastructure.
start_enforcer() {
  ensure_started netpol-enforcer "" "$ENFORCER_BIN" \
    --kubeconfig="$ADMIN_KUBECONFIG" --node-name="$NODE_NAME" --pod-cidr="$POD_CIDR" --v=1
  wait_until "NetworkPolicy enforcer hook (iptables chain LGNP-ENFORCER)" 30 netpol-enforcer \
    iptables -w 5 -C FORWARD -j LGNP-ENFORCER
}

# node_condition: "<Ready status> <reason>: <message>|<taint keys>".
node_condition() {
  k get node "$NODE_NAME" --request-timeout=5s -o \
    jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}: {.status.conditions[?(@.type=="Ready")].message}|{.spec.taints[*].key}' 2>/dev/null
}

# node_wait_ready: Ready, and the controller-manager has lifted the
# not-ready taint so the scheduler places pods on it. Progress every 5s.
node_wait_ready() {
  local t0 cond now last="" secs next=5 n
  t0=$(now_ms)
  while true; do
    cond=$(node_condition || true)
    if [[ $cond == "True "*"|" ]]; then
      ok "node $NODE_NAME Ready ($(elapsed "$t0"))"
      return 0
    fi
    now=${cond:-node not registered yet}
    [[ -n $last ]] || info "… waiting for node $NODE_NAME to be Ready"
    for n in containerd kubelet; do
      pid_of "$n" >/dev/null || die_with_log "$n" "$n exited while waiting for node $NODE_NAME to be Ready"
    done
    secs=$((($(now_ms) - t0) / 1000))
    if ((secs >= NODE_READY_TIMEOUT)); then
      die_with_log kubelet "node $NODE_NAME not Ready after ${NODE_READY_TIMEOUT}s (last: $now)"
    fi
    # Progress: every change of the condition, and every 5s regardless.
    if ((secs >= next)) || [[ -n $last && $now != "$last" ]]; then
      info "… ${secs}s: $now"
      next=$((secs + 5))
    fi
    last=$now
    sleep 0.2
  done
}

# node_start: the runtime and the node components; the control plane runs.
node_start() {
  local t0
  step "node $NODE_NAME (containerd, kubelet :$KUBELET_PORT on $NODE_IP, kube-scheduler :$SCHEDULER_PORT, kube-proxy $NODE_PROXY_MODE)"
  t0=$(now_ms)
  start_containerd
  import_images
  start_kubelet
  start_scheduler
  start_kube_proxy
  start_enforcer
  node_wait_ready
  ok "node ready ($(elapsed "$t0"))"
}

# node_up: node_start, where a failure stops the node only (fatal under
# DEV_NODE=require). A subshell so a die inside ends just the node start;
# errexit is set inside it because a subshell tested by if or || ignores it.
node_up() {
  local rc
  [[ $NODE == 1 ]] || return 0
  set +e
  (
    set -e
    node_start
  )
  rc=$?
  set -e
  ((rc == 0)) && return 0
  if [[ $(node_mode) == require ]]; then
    die "the node failed to start (DEV_NODE=require); 'hack/dev.sh down' cleans up"
  fi
  warn "the node failed to start (above): stopping its components, the control plane goes on alone"
  node_stop_components
  NODE=0
}
