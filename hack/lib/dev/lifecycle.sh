# shellcheck shell=bash
# What several subcommands share: port preflight, stopping everything,
# wiping etcd, the usage hint and prepare (what every start does first).
# Sourced by hack/dev.sh (after hack/lib/common.sh and hack/lib/node.sh),
# never executed: functions only.

# preflight_ports: check every port of every component not yet running before
# starting anything, so a conflict does not leave a half-started cluster.
preflight_ports() {
  pid_of etcd >/dev/null || require_ports_free etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
  pid_of kube-apiserver >/dev/null || require_ports_free kube-apiserver "$APISERVER_PORT"
  pid_of kube-controller-manager >/dev/null || require_ports_free kube-controller-manager "$KCM_PORT"
  local i n
  if ((REPLICAS > 1)); then
    pid_of webhook-proxy >/dev/null || pid_of manager >/dev/null || require_ports_free webhook-proxy "$WEBHOOK_PORT"
  fi
  for ((i = 1; i <= REPLICAS; i++)); do
    n=$(replica_name "$i")
    # A running manager may be restarted on other ports: checked then.
    pid_of "$n" >/dev/null || pid_of manager >/dev/null ||
      require_ports_free "$n" "$(replica_webhook_port "$i")" "$(replica_metrics_port "$i")" "$(replica_probe_port "$i")"
  done
  [[ $NODE == 1 ]] || return 0
  pid_of kubelet >/dev/null || require_ports_free kubelet "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT"
  pid_of kube-scheduler >/dev/null || require_ports_free kube-scheduler "$SCHEDULER_PORT"
  pid_of kube-proxy >/dev/null || require_ports_free kube-proxy "$PROXY_METRICS_PORT" "$PROXY_HEALTHZ_PORT"
}

any_running() {
  local n
  for n in $(running_managers) kube-controller-manager kube-apiserver etcd; do
    pid_of "$n" >/dev/null && return 0
  done
  node_any_running
}

# stop_all: the node first (its containers while containerd answers), then
# the manager and the control plane. The node's host state stays for
# node_down.
stop_all() {
  local n
  node_stop_components
  for n in $(running_managers) kube-controller-manager kube-apiserver etcd; do
    stop_proc "$n" 20
  done
}

wipe_etcd() {
  rm -rf "$DEV/etcd"
  info "deleted ${DEV#"$ROOT"/}/etcd: the next up starts with an empty cluster"
}

usage_hint() {
  cat <<EOF

loopguard dev cluster is up (kube-apiserver https://$API_ADDR:$APISERVER_PORT).
  export KUBECONFIG=$ADMIN_KUBECONFIG
  kubectl apply -f config/samples/
  kubectl get lbs -A
EOF
  if [[ $NODE == 1 ]]; then
    cat <<EOF
  kubectl get nodes        # $NODE_NAME, pods on $POD_CIDR (bridge $NODE_BRIDGE)
  kubectl run web --image=$LISTENER_IMAGE --image-pull-policy=Never
  kubectl get nodebindreports   # the node agent's view (DEV_AGENT=0: no agent)
EOF
  else
    echo "  (no node: pods stay Pending)"
  fi
  cat <<EOF
  make dev-down            # or: hack/dev.sh down
logs: ${LOGS#"$ROOT"/}/<component>.log
EOF
}

# prepare: what every start does before anything runs: binaries, the node
# decision (the API server's address depends on it), the node's host setup
# (the API server binds the node address), PKI and kubeconfigs.
prepare() {
  build_tools
  build_manager # before starting anything: a compile error fails fast
  step "node"
  node_decide
  node_build
  agent_build
  node_host_up
  ensure_pki
  preflight_ports
}
