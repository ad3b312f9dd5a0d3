# shellcheck shell=bash
# The dev node for hack/dev.sh: containerd, the kubelet, kube-scheduler and
# kube-proxy as host processes, so pods really run. Sourced after common.sh,
# never executed. Expects ROOT, DEV, PKI, LOGS, RUN, K8S_BIN, DEVTOOL and the
# k() kubectl wrapper of dev.sh.
#
# Network rule: the node uses only what it creates — the bridge lgbr0 with
# the pod gateway 10.244.0.1/24 and the node address 10.245.0.1/32 — and
# loopback. Nothing listens on a wildcard or on the machine's uplink
# address, pods get no default resolver and no masquerading, IP forwarding
# stays off (nothing from a pod leaves this machine), and containerd's image
# pulls go to a closed loopback proxy (no registry request, not even a DNS
# query, leaves it either).
#
# Host state the node changes is recorded before the first start (in
# .dev/node-before/) and put back by node_down: sysctls the kubelet sets,
# netfilter tables and chains, mounts, cgroups, interfaces and the few paths
# outside .dev/ that the kubelet and containerd insist on.

NODE_NAME=loopguard-dev-node
NODE_IP=10.245.0.1
NODE_BRIDGE=lgbr0
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
POD_PREFIX=24
NODE_CGROUP=loopguard-dev
NODE_STATE=$DEV/node
NODE_CONF=$NODE_STATE/config
NODE_BEFORE=$DEV/node-before
CONTAINERD_SOCK=$NODE_STATE/containerd/containerd.sock
CNI_BIN_DIR=/usr/lib/cni
SANDBOX_IMAGE=docker.io/library/loopguard-pause:dev
# shellcheck disable=SC2034 # used by dev.sh (usage hint) and the tests
LISTENER_IMAGE=loopguard-listener:dev
IMAGES_OUT=$ROOT/bin/images
IMAGES_TOOL=$ROOT/bin/images-tool
KUBELET_KUBECONFIG=$DEV/kubelet.kubeconfig
SCHEDULER_KUBECONFIG=$DEV/kube-scheduler.kubeconfig
PROXY_KUBECONFIG=$DEV/kube-proxy.kubeconfig
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
SCHEDULER_PORT=10259
PROXY_METRICS_PORT=10249
PROXY_HEALTHZ_PORT=10256
NODE_PROXY_MODE=${DEV_NODE_PROXY_MODE:-nftables}
NODE_READY_TIMEOUT=${DEV_NODE_READY_TIMEOUT:-90}
# Stop order: nothing may start a pod while the runtime goes away; the
# NetworkPolicy enforcer first (it removes its iptables hook as it exits).
NODE_COMPONENTS=(netpol-enforcer kube-scheduler kube-proxy kubelet containerd)
ENFORCER_BIN=$ROOT/bin/enforcer

# Sysctls the kubelet (kernel.*, vm.*), the CNI plugins and kube-proxy
# (net.*) may change. Per-interface ones go with the interfaces.
NODE_SYSCTLS=(
  kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal
  net.netfilter.nf_conntrack_udp_timeout net.netfilter.nf_conntrack_udp_timeout_stream
)
# Paths outside .dev/ that the node creates whatever it is told: the
# kubelet's /var/log/containers symlinks, libcni's result cache, and
# containerd 1.6's shim sockets (/run/containerd/s).
NODE_HOST_PATHS=(/var/log/containers /var/lib/cni /run/containerd)

# NODE is 1 while this run has (or is bringing up) a node; API_ADDR is where
# the API server listens: the node address with a node, else 127.0.0.1.
NODE=0
API_ADDR=127.0.0.1

# ---------------------------------------------------------------- mode

indent() { sed 's/^/  /'; }

# node_mode: DEV_NODE normalised to off | auto | on | require.
#   unset/auto  a node when root on Linux (installing the runtime if needed);
#               if it cannot start, say why and go on without it
#   1/on        the same, also when not root (then it says why it cannot)
#   require     a node or a hard failure (tests)
#   0/off       the control plane alone
node_mode() {
  case ${DEV_NODE:-auto} in
    "" | auto) echo auto ;;
    0 | off | false | no) echo off ;;
    1 | on | true | yes) echo on ;;
    require) echo require ;;
    *) die "DEV_NODE=$DEV_NODE: want auto, 0, 1 or require" ;;
  esac
}

# node_fail REASON: a node is impossible or failed. Fatal under
# DEV_NODE=require; otherwise the control plane goes on alone.
node_fail() {
  if [[ $(node_mode) == require ]]; then
    die "no node: $1 (DEV_NODE=require)"
  fi
  warn "no node: $1"
  warn "continuing with the control plane alone (pods stay Pending); DEV_NODE=0 skips the node, DEV_NODE=require makes this an error"
  NODE=0
  API_ADDR=127.0.0.1
}

# node_blocker: print why a node cannot run here (empty: it can). Installs
# the runtime packages when they are missing and we are root. Its stdout is
# the reason: progress goes to stderr.
node_blocker() {
  local out
  [[ $(uname -s) == Linux ]] || { echo "the node needs Linux (this is $(uname -s))"; return; }
  [[ $(id -u) == 0 ]] || {
    echo "the node needs root (network namespaces, mounts, cgroups); run as root, or DEV_NODE=0 to skip it"
    return
  }
  # unix socket paths are limited to 107 bytes; containerd adds ".ttrpc".
  ((${#CONTAINERD_SOCK} + 6 < 108)) ||
    { echo "the containerd socket path ${CONTAINERD_SOCK} is too long for a unix socket: use a shorter checkout path"; return; }
  if ! out=$("$ROOT/hack/node/install-runtime.sh" --check); then
    info "… container runtime not installed ($out)" >&2
    "$ROOT/hack/node/install-runtime.sh" 2>&1 | sed 's/^/  /' >&2 ||
      { echo "installing the container runtime failed (see above)"; return; }
  fi
  grep -qw overlay /proc/filesystems ||
    { echo "the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)"; return; }
  [[ -e /sys/fs/cgroup/cgroup.controllers || -e /sys/fs/cgroup/memory/cgroup.procs ]] ||
    { echo "no cgroup filesystem under /sys/fs/cgroup"; return; }
  out=$(ip -o -4 addr show 2>/dev/null | awk -v br="$NODE_BRIDGE" '$2 != br' |
    grep -E " (${POD_CIDR%.*}\.[0-9]+|${NODE_IP//./\\.})/" || true)
  [[ -z $out ]] ||
    { echo "the pod range $POD_CIDR or the node address $NODE_IP is already used on this machine: $out"; return; }
  node_busy_ports
}

# node_busy_ports: a node component's port held by another process (a
# component of ours that runs is restarted or kept, not a conflict).
node_busy_ports() {
  local spec name port
  for spec in kubelet:$KUBELET_PORT kubelet:$KUBELET_HEALTHZ_PORT kube-scheduler:$SCHEDULER_PORT \
    kube-proxy:$PROXY_METRICS_PORT kube-proxy:$PROXY_HEALTHZ_PORT; do
    name=${spec%%:*}
    port=${spec#*:}
    pid_of "$name" >/dev/null && continue
    if port_in_use "$port"; then wait_ports_free 3 "$port"; fi
    if port_in_use "$port"; then
      echo "port $port ($name) is already in use: $(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(.*)' | head -n 1)"
      return
    fi
  done
}

# node_decide: called before anything starts; sets NODE and API_ADDR.
node_decide() {
  local mode reason
  mode=$(node_mode)
  NODE=0
  API_ADDR=127.0.0.1
  [[ $mode != off ]] || { info "node: off (DEV_NODE=0)"; return 0; }
  if [[ $mode == auto && $(id -u) != 0 ]]; then
    info "node: off (not root; DEV_NODE=1 or require to insist)"
    return 0
  fi
  reason=$(node_blocker)
  if [[ -n $reason ]]; then
    node_fail "$reason"
    return 0
  fi
  NODE=1
  API_ADDR=$NODE_IP
}

# node_build: the node's binaries and images, before anything starts, so a
# compile error fails fast.
node_build() {
  local t0 log
  [[ $NODE == 1 ]] || return 0
  step "node binaries and images"
  t0=$(now_ms)
  if ! "$ROOT/hack/build-k8s.sh" node 2>&1 | sed 's/^/  /'; then
    node_fail "building the node binaries failed (see above)"
    return 0
  fi
  (cd "$ROOT/hack/images" && go build -o "$IMAGES_TOOL" .) || { node_fail "building hack/images failed"; return 0; }
  log=$("$IMAGES_TOOL" build --repo "$ROOT" --out "$IMAGES_OUT" 2>&1) ||
    { node_fail "building the node images failed: $log"; return 0; }
  indent <<<"$log"
  "$ROOT/hack/enforcer/build.sh" 2>&1 | indent || { node_fail "building the NetworkPolicy enforcer (hack/enforcer) failed"; return 0; }
  ok "node binaries and images ready ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------- host setup

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
    CGROUP_ROOT="$NODE_CGROUP" STATE="$NODE_STATE"
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

# ---------------------------------------------------------------- components

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

# ---------------------------------------------------------------- teardown

node_any_running() {
  local n
  for n in "${NODE_COMPONENTS[@]}"; do pid_of "$n" >/dev/null && return 0; done
  return 1
}

# node_kill_containers: every container, sandboxes included, through
# containerd while it answers. Pod network namespaces are freed with their
# mounts below; the kubelet is already stopped, so nothing restarts them.
node_kill_containers() {
  local ids id i
  pid_of containerd >/dev/null || return 0
  ids=$(ctr_ tasks ls -q 2>/dev/null) || return 0
  [[ -n $ids ]] || return 0
  info "killing $(wc -w <<<"$ids") container(s)"
  for id in $ids; do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || :; done
  for ((i = 0; i < 50; i++)); do
    [[ $(ctr_ tasks ls 2>/dev/null) == *RUNNING* ]] || break
    sleep 0.1
  done
  for id in $ids; do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || :; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers delete "$id" >/dev/null 2>&1 || :
  done
}

# node_cgroup_pids: processes still in the node's cgroups (pods).
node_cgroup_pids() {
  local m
  while read -r m; do
    if [[ -d $m/$NODE_CGROUP ]]; then find "$m/$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null || :; fi
  done < <(cgroup_mounts) | sort -un
}

# node_shim_pids: the containerd shims of our containerd: each is started
# with '-address <our socket>', a path no other containerd uses.
node_shim_pids() {
  ps -eo pid=,args= | awk -v want=" -address $CONTAINERD_SOCK" '
    $2 ~ /containerd-shim/ && index($0 " ", want " ") { print $1 }'
}

# node_kill_leftovers: pod processes and shims that outlived containerd.
node_kill_leftovers() {
  local pids i
  pids=$( (node_cgroup_pids; node_shim_pids) | sort -un | tr '\n' ' ')
  [[ -n ${pids// /} ]] || return 0
  info "killing leftover pod processes and shims: $pids"
  # shellcheck disable=SC2086 # a list of PIDs
  kill -KILL $pids 2>/dev/null || :
  for ((i = 0; i < 50; i++)); do
    pids=$( (node_cgroup_pids; node_shim_pids) | tr '\n' ' ')
    [[ -n ${pids// /} ]] || return 0
    sleep 0.1
  done
  warn "processes survived SIGKILL: $pids"
}

# dev_mounts: mount points under .dev/, deepest first (octal escapes such as
# \040 for a space are decoded).
dev_mounts() {
  awk '{print $5}' /proc/self/mountinfo | while read -r m; do
    m=$(printf '%b' "$m")
    if [[ $m == "$DEV"/* ]]; then echo "$m"; fi
  done | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2-
}

node_unmount() {
  local m n=0 left
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
    n=$((n + 1))
  done < <(dev_mounts)
  ((n == 0)) || info "unmounted $n mount(s) under ${DEV#"$ROOT"/}/"
  left=$(dev_mounts)
  [[ -z $left ]] || warn "still mounted:"$'\n'"$left"
}

node_remove_cgroups() {
  local m
  while read -r m; do
    [[ -d $m/$NODE_CGROUP ]] || continue
    find "$m/$NODE_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || :
    [[ ! -d $m/$NODE_CGROUP ]] || warn "could not remove cgroup $m/$NODE_CGROUP (processes left in it?)"
  done < <(cgroup_mounts)
}

# restore_lines: turn iptables-save output of one table into an
# iptables-restore --noflush script that removes every KUBE-*, CNI-* and
# LGNP-* (the NetworkPolicy enforcer's)
# chain and every rule elsewhere that jumps to one (empty if none).
restore_lines() {
  awk -v table="$1" '
    /^:(KUBE|CNI|LGNP)-/ { sub(/^:/, ""); chains[++n] = $1; next }
    /^-A / && $2 !~ /^(KUBE|CNI|LGNP)-/ && / -[jg] (KUBE|CNI|LGNP)-/ { sub(/^-A /, "-D "); dels[++m] = $0 }
    END {
      if (n + m == 0) exit
      print "*" table
      for (i = 1; i <= m; i++) print dels[i]
      for (i = 1; i <= n; i++) print "-F " chains[i]
      for (i = 1; i <= n; i++) print "-X " chains[i]
      print "COMMIT"
    }'
}

# node_clean_netfilter: kube-proxy's nftables tables; the iptables chains of
# the kubelet (KUBE-FIREWALL, canaries), kube-proxy's iptables mode and the
# CNI portmap plugin; then the iptables-nft tables that did not exist before
# the node and are empty now.
node_clean_netfilter() {
  local fam name cmd table script
  if command -v nft >/dev/null; then
    for fam in ip ip6; do
      if nft list table "$fam" kube-proxy >/dev/null 2>&1; then nft delete table "$fam" kube-proxy; fi
    done
    # The enforcer's library tries its own table on every sync (it cannot
    # load here, see hack/enforcer): removed should one ever have loaded.
    if nft list table inet kube-network-policies >/dev/null 2>&1; then nft delete table inet kube-network-policies; fi
  fi
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null || continue
    for table in filter nat mangle raw; do
      script=$("$cmd-save" -t "$table" 2>/dev/null | restore_lines "$table") || :
      [[ -z $script ]] || "$cmd-restore" --noflush <<<"$script" || warn "$cmd: could not remove the KUBE-/CNI- chains of table $table"
    done
  done
  command -v nft >/dev/null && [[ -f $NODE_BEFORE/nft-tables ]] || return 0
  nft list tables 2>/dev/null | while read -r _ fam name; do
    if grep -qx "table $fam $name" "$NODE_BEFORE/nft-tables"; then continue; fi
    case $fam in ip) cmd=iptables ;; ip6) cmd=ip6tables ;; *) continue ;; esac
    case $name in filter | nat | mangle | raw | security) ;; *) continue ;; esac
    # Captured first: grep -q closing the pipe early would fail the
    # pipeline and look like "no rules".
    script=$("$cmd-save" -t "$name" 2>/dev/null) || continue
    if ! grep -q '^-A ' <<<"$script"; then nft delete table "$fam" "$name" || :; fi
  done
}

# leftover_netfilter: what node_clean_netfilter should have removed.
leftover_netfilter() {
  local cmd
  if command -v nft >/dev/null; then nft list tables 2>/dev/null | grep -wE 'kube-proxy|kube-network-policies' || :; fi
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null || continue
    "$cmd-save" 2>/dev/null | grep -E '^:(KUBE|CNI|LGNP)-|-[jg] (KUBE|CNI|LGNP)-' | sed "s/^/$cmd: /" || :
  done
}

node_remove_interfaces() {
  local veth
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || return 0
  for veth in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$veth" 2>/dev/null || :
  done
  ip link delete "$NODE_BRIDGE" && info "deleted interface $NODE_BRIDGE"
}

node_restore_sysctls() {
  local key val cur f
  [[ -f $NODE_BEFORE/sysctl ]] || return 0
  while IFS='=' read -r key val; do
    f=$(sysctl_path "$key")
    [[ -r $f ]] || continue
    cur=$(<"$f")
    [[ $cur == "$val" ]] && continue
    if echo "$val" >"$f" 2>/dev/null; then
      info "restored $key = $val (was $cur)"
    else
      warn "could not restore $key to $val (is $cur)"
    fi
  done <"$NODE_BEFORE/sysctl"
}

# leftover_sysctls: recorded sysctls whose value differs now.
leftover_sysctls() {
  local key val f
  [[ -f $NODE_BEFORE/sysctl ]] || return 0
  while IFS='=' read -r key val; do
    f=$(sysctl_path "$key")
    if [[ -r $f && $(<"$f") != "$val" ]]; then echo "$key=$(<"$f") (was $val)"; fi
  done <"$NODE_BEFORE/sysctl"
  return 0
}

existed_before() { [[ -f $NODE_BEFORE/paths ]] && grep -qxF "$1" "$NODE_BEFORE/paths"; }


# node_clean_host_paths: the node's traces outside .dev/; a directory goes
# only if the node created it and it is empty (or, for /run/containerd,
# holds only our shims' sockets and no containerd of the system runs).
node_clean_host_paths() {
  local l
  if [[ -d /var/log/containers ]]; then
    for l in /var/log/containers/*; do
      if [[ -L $l && $(readlink "$l") == "$NODE_STATE"/* ]]; then rm -f "$l"; fi
    done
    existed_before /var/log/containers || rmdir /var/log/containers 2>/dev/null || :
  fi
  if [[ -d /var/lib/cni ]]; then
    # libcni caches each ADD as <network>-<container id>-<interface>
    # (containers killed without a CNI DEL keep theirs): ours are network
    # loopguard-dev, and containerd's cni-loopback entries whose result
    # names a network namespace under our state dir.
    for l in /var/lib/cni/results/*; do
      [[ -f $l ]] || continue
      if [[ ${l##*/} == loopguard-dev-* ]] || grep -qF "\"$NODE_STATE/" "$l"; then
        rm -f "$l"
      fi
    done
    if ! existed_before /var/lib/cni; then
      rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || :
    fi
  fi
  if [[ -d /run/containerd ]] && ! existed_before /run/containerd && [[ ! -S /run/containerd/containerd.sock ]]; then
    rm -rf --one-file-system /run/containerd/s 2>/dev/null || :
    rmdir /run/containerd 2>/dev/null || :
  fi
}

node_stop_components() {
  local n
  for n in "${NODE_COMPONENTS[@]}"; do
    # Containers go while containerd still answers, after the kubelet
    # stopped (it would restart them).
    if [[ $n == containerd ]]; then node_kill_containers; fi
    stop_proc "$n" 20
  done
}

# node_leftovers: print everything node_down must have removed and did not.
node_leftovers() {
  local out
  out=$( (node_cgroup_pids; node_shim_pids) | tr '\n' ' ')
  [[ -z ${out// /} ]] || echo "processes: $out"
  out=$(dev_mounts)
  [[ -z $out ]] || echo "mounts: $out"
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then echo "interface: $NODE_BRIDGE"; fi
  out=$(leftover_netfilter)
  [[ -z $out ]] || echo "netfilter: $out"
  out=$(leftover_sysctls)
  [[ -z $out ]] || echo "sysctls: $out"
  return 0
}

# node_down: stop the node and put the host back as it was. Safe to run
# twice, and when no node ever ran (it then does nothing). Fails when
# something could not be removed, after trying everything.
node_down() {
  local left
  if [[ ! -e $NODE_STATE && ! -e $NODE_BEFORE ]] && ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    return 0
  fi
  if [[ $(id -u) != 0 ]]; then
    warn "a dev node was set up (${NODE_STATE#"$ROOT"/}); removing it needs root: sudo hack/dev.sh down"
    return 0
  fi
  node_stop_components
  node_kill_leftovers
  node_unmount
  node_remove_cgroups
  node_clean_netfilter
  node_remove_interfaces
  node_restore_sysctls
  node_clean_host_paths
  left=$(node_leftovers)
  if [[ -n $left ]]; then
    warn "the node left this behind (kept ${NODE_BEFORE#"$ROOT"/} so a second 'down' can retry):"$'\n'"$left"
    return 1
  fi
  # Only now: nothing is mounted below it any more.
  rm -rf --one-file-system "$NODE_STATE" "$NODE_BEFORE"
  ok "node removed; host state restored"
}

# node_status: status lines of the node components (dev.sh status).
node_status() {
  local n pid cond rc=0
  [[ -e $NODE_STATE ]] || return 0
  for n in containerd kubelet kube-scheduler kube-proxy netpol-enforcer; do
    if pid=$(pid_of "$n"); then
      printf '  %-24s running (pid %s)\n' "$n" "$pid"
    else
      printf '  %-24s stopped\n' "$n"
      rc=1
    fi
  done
  if [[ -n ${KUBECTL:-} ]] && pid_of kube-apiserver >/dev/null && cond=$(node_condition); then
    printf '  %-24s Ready=%s\n' "node $NODE_NAME" "${cond%%|*}"
  fi
  return "$rc"
}
