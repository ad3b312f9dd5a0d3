# shellcheck shell=bash
# The dev node's host setup: recording the host state first, the bridge,
# cgroups, rendered configs and kubeconfigs. Sourced by hack/lib/node.sh, never executed: functions only.

sysctl_path() { echo "/proc/sys/${1//.//}"; }

# node_record_host: remember the host state the node will change, once: a
# second 'up' (or one after a crash) must not record the node's own values.
node_record_host() {
  local key f p
  [[ -f $NODE_BEFORE/complete ]] && return 0
  rm -rf "$NODE_BEFORE"
  mkdir -p "$NODE_BEFORE"
  for key in "${NODE_SYSCTLS[@]}"; do
    f=$(sysctl_path "$key")
    if [[ -r $f ]]; then printf '%s=%s\n' "$key" "$(<"$f")"; fi
  done >"$NODE_BEFORE/sysctl"
  if command -v nft >/dev/null; then nft list tables >"$NODE_BEFORE/nft-tables" 2>/dev/null || :; fi
  for p in "${NODE_HOST_PATHS[@]}"; do
    if [[ -e $p ]]; then echo "$p"; fi
  done >"$NODE_BEFORE/paths"
  touch "$NODE_BEFORE/complete"
}

# node_net_up: the bridge the pods attach to. It carries the pod gateway
# (the CNI bridge plugin runs with isGateway=false so it never turns on IP
# forwarding) and the node address the API server and kubelet listen on.
node_net_up() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge || return 1
  fi
  # No IPv6 on the bridge: nothing to route, and no router solicitations.
  echo 1 >"$(sysctl_path "net.ipv6.conf.$NODE_BRIDGE.disable_ipv6")" 2>/dev/null || :
  ip addr replace "$POD_GATEWAY/$POD_PREFIX" dev "$NODE_BRIDGE" &&
    ip addr replace "$NODE_IP/32" dev "$NODE_BRIDGE" &&
    ip link set "$NODE_BRIDGE" up
}

# cgroup_mounts: each cgroup hierarchy (v1 controllers, and v2 or the
# hybrid 'unified' one).
cgroup_mounts() {
  local d
  if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
    echo /sys/fs/cgroup
    return
  fi
  for d in /sys/fs/cgroup/*/; do
    if [[ -e $d/cgroup.procs ]]; then echo "${d%/}"; fi
  done
}

# node_cgroups_up: the kubelet's --cgroup-root, in every hierarchy, so the
# pods' cgroups live in a subtree node_down can remove whole.
node_cgroups_up() {
  local m
  while read -r m; do
    mkdir -p "$m/$NODE_CGROUP" || return 1
    # A new v1 cpuset is empty: copy the parent's so tasks may join.
    if [[ -e $m/cpuset.cpus ]]; then
      [[ -n $(<"$m/$NODE_CGROUP/cpuset.cpus") ]] || cat "$m/cpuset.cpus" >"$m/$NODE_CGROUP/cpuset.cpus"
      [[ -n $(<"$m/$NODE_CGROUP/cpuset.mems") ]] || cat "$m/cpuset.mems" >"$m/$NODE_CGROUP/cpuset.mems"
    fi
  done < <(cgroup_mounts)
}

# render SRC DST KEY=VALUE...: replace each @KEY@ of a template.
render() {
  local src=$1 dst=$2 kv k v args=()
  shift 2
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    v=${v//\\/\\\\}
    v=${v//|/\\|}
    v=${v//&/\\&}
    args+=(-e "s|@$k@|$v|g")
  done
  sed "${args[@]}" "$src" >"$dst.tmp"
  if grep -qE '@[A-Z_]+@' "$dst.tmp"; then
    die "template ${src#"$ROOT"/}: placeholder left in ${dst#"$ROOT"/}: $(grep -oE '@[A-Z_]+@' "$dst.tmp" | head -n 1)"
  fi
  mv -f "$dst.tmp" "$dst"
}

node_render_configs() {
  local src=$ROOT/hack/node
  mkdir -p "$NODE_CONF" "$NODE_STATE/cni/net.d" "$NODE_STATE/pod-logs" "$NODE_STATE/runc" \
    "$NODE_STATE/kubelet" "$DEV/kube-scheduler"
  render "$src/containerd.toml" "$NODE_CONF/containerd.toml" STATE="$NODE_STATE" SOCK="$CONTAINERD_SOCK" \
    SANDBOX_IMAGE="$SANDBOX_IMAGE" CNI_BIN_DIR="$CNI_BIN_DIR"
  render "$src/cni.conflist" "$NODE_STATE/cni/net.d/10-loopguard-dev.conflist" STATE="$NODE_STATE" \
    BRIDGE="$NODE_BRIDGE" POD_CIDR="$POD_CIDR" POD_GATEWAY="$POD_GATEWAY"
  render "$src/kubelet.yaml" "$NODE_CONF/kubelet.yaml" NODE_IP="$NODE_IP" PKI="$PKI" SOCK="$CONTAINERD_SOCK" \
    CGROUP_ROOT="$NODE_CGROUP" STATE="$NODE_STATE" MAX_PODS="$NODE_MAX_PODS"
  render "$src/kube-proxy.yaml" "$NODE_CONF/kube-proxy.yaml" KUBECONFIG="$PROXY_KUBECONFIG" NODE_NAME="$NODE_NAME" \
    NODE_IP="$NODE_IP" PROXY_MODE="$NODE_PROXY_MODE" POD_CIDR="$POD_CIDR"
}

# node_kubeconfigs: one per node component, with the identities
# hack/devtool pki issued (called with the other kubeconfigs).
node_kubeconfigs() {
  local server=https://$API_ADDR:$APISERVER_PORT
  "$DEVTOOL" kubeconfig --server "$server" --ca "$PKI/ca.crt" --cert "$PKI/kubelet-client.crt" \
    --key "$PKI/kubelet-client.key" --user "system:node:$NODE_NAME" --out "$KUBELET_KUBECONFIG"
  "$DEVTOOL" kubeconfig --server "$server" --ca "$PKI/ca.crt" --cert "$PKI/kube-scheduler.crt" \
    --key "$PKI/kube-scheduler.key" --user system:kube-scheduler --out "$SCHEDULER_KUBECONFIG"
  "$DEVTOOL" kubeconfig --server "$server" --ca "$PKI/ca.crt" --cert "$PKI/kube-proxy.crt" \
    --key "$PKI/kube-proxy.key" --user system:kube-proxy --out "$PROXY_KUBECONFIG"
}

# node_host_up: everything the API server needs before it starts (it binds
# the node address) and the node components need before they start.
node_host_up() {
  local t0
  [[ $NODE == 1 ]] || return 0
  step "node host setup (bridge $NODE_BRIDGE: pods $POD_CIDR, node $NODE_IP; cgroup /$NODE_CGROUP)"
  t0=$(now_ms)
  node_record_host
  node_net_up || { node_fail "could not set up the bridge $NODE_BRIDGE"; return 0; }
  node_cgroups_up || { node_fail "could not create the cgroup /$NODE_CGROUP"; return 0; }
  node_render_configs
  ok "bridge, cgroups and configs ready ($(elapsed "$t0"))"
}
