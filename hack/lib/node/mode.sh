# shellcheck shell=bash
# The dev node's mode: whether this run has a node (DEV_NODE), what blocks
# one, and building its binaries and images. Sourced by hack/lib/node.sh, never executed: functions only.

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
