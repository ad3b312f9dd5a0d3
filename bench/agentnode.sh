#!/usr/bin/env bash
# bench/agentnode.sh: the node agent at its largest (issue 18, issue 21):
# the dev node filled to its kubelet's maxPods with listener pods (each on
# TCP 0.0.0.0:8080, 127.0.0.1:9000, 127.0.0.1:9001 and UDP [::1]:5353),
# the agent of `make dev` (discovery on, --scan-interval=5s), measured in
# two phases of WINDOW seconds each:
#   discovery  no policy selects the bench pods: every pod is discovered;
#   protected  a LoopbackService protects 9000-9001 on every bench pod.
# Per phase: scans in the window, mean scan time (the agent's
# loopguard_agent_scan_duration_seconds histogram, read on its loopback-only
# metrics address inside its own network namespace), the agent process's CPU
# (utime+stime from /proc), pods checked and the NodeBindReport's size.
# EHASH=N sets net.ipv4.tcp_child_ehash_entries to N on this host (the dev
# node's kernel) before the pods start, so each pod's network namespace gets
# its own TCP established table, and restores it at exit.
# Run by `make bench-agent-node` on `DEV_NODE_MAX_PODS=110 make dev-up`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${DEV_DIR:-$ROOT/.dev}
KUBECTL=${KUBECTL:-$ROOT/bin/k8s/current/kubectl}
WINDOW=${WINDOW:-60}
NS=agent-bench
IMAGE=${LISTENER_IMAGE:-loopguard-listener:dev}

k() { "$KUBECTL" --kubeconfig "$DEV/kubeconfig" "$@"; }
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $WINDOW =~ ^[0-9]+$ ]] && ((WINDOW >= 15 && WINDOW <= 600)) || die "WINDOW=$WINDOW: want 15..600 seconds"
node=$(k get nodes -o jsonpath='{.items[0].metadata.name}') || die "no dev cluster at $DEV (make dev-up first)"
[[ -n $node ]] || die "the dev cluster has no node (DEV_NODE must not be 0)"
max=$(k get node "$node" -o jsonpath='{.status.allocatable.pods}')

agent_pid() {
  local pod cid
  pod=$(k -n loopguard-agent get pods -o jsonpath='{.items[0].metadata.name}')
  [[ -n $pod ]] || die "no agent pod (make dev runs it unless DEV_AGENT=0)"
  cid=$(k -n loopguard-agent get pod "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}')
  cid=${cid#*://}
  # The agent's process: the one whose cgroup names its container.
  grep -l "$cid" /proc/[0-9]*/cgroup 2>/dev/null | while read -r f; do
    p=${f#/proc/}; p=${p%/cgroup}
    [[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) == *agent* ]] && { echo "$p"; break; }
  done
}

# metrics PID: the agent's /metrics, read inside its network namespace.
metrics() {
  nsenter -t "$1" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3'
}
metric() { awk -v m="$2" '$1 == m { print $2 }' <<<"$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

measure() {
  local phase=$1 pid m0 m1 c0 c1 n s hz pods size
  pid=$(agent_pid)
  [[ -n $pid ]] || die "cannot find the agent's process"
  hz=$(getconf CLK_TCK)
  m0=$(metrics "$pid"); c0=$(cpu_ticks "$pid")
  log "$phase: measuring ${WINDOW}s (agent pid $pid)"
  # The window is the measurement itself, not a synchronisation.
  sleep "$WINDOW"
  m1=$(metrics "$pid"); c1=$(cpu_ticks "$pid")
  n=$(awk -v a="$(metric "$m0" loopguard_agent_scan_duration_seconds_count)" -v b="$(metric "$m1" loopguard_agent_scan_duration_seconds_count)" 'BEGIN { print b - a }')
  s=$(awk -v a="$(metric "$m0" loopguard_agent_scan_duration_seconds_sum)" -v b="$(metric "$m1" loopguard_agent_scan_duration_seconds_sum)" 'BEGIN { print b - a }')
  ((n > 0)) || die "$phase: no scan in ${WINDOW}s"
  pods=$(metric "$m1" loopguard_agent_pods_checked)
  size=$(k get nodebindreport "$node" -o json | wc -c)
  awk -v phase="$phase" -v n="$n" -v s="$s" -v c=$((c1 - c0)) -v hz="$hz" -v w="$WINDOW" -v pods="$pods" -v size="$size" \
    -v running="$(k get pods -A --field-selector "spec.nodeName=$node,status.phase=Running" --no-headers | wc -l)" \
    -v disc="$(k get nodebindreport "$node" -o jsonpath='{range .status.discovery.pods[*]}{.name}{"\n"}{end}' | grep -c . || :)" 'BEGIN {
      printf "%-10s running pods %d, pods checked %s, pods discovered %d, scans %d, mean scan %.0f ms, agent CPU %.2f s per %d s (%.1f%% of one core; %.2f%% at the default 1m interval), report %d bytes\n",
        phase, running, pods, disc, n, 1000 * s / n, c / hz, w, 100 * c / hz / w, 100 * c / hz / w * 5 / 60, size }'
}

EHASH=${EHASH:-}
ehash_before=$(cat /proc/sys/net/ipv4/tcp_child_ehash_entries 2>/dev/null || echo unsupported)
cleanup() {
  # Waits for the pods to go, so a second run starts on an empty node.
  k delete namespace "$NS" --ignore-not-found --timeout=300s >/dev/null 2>&1 || :
  [[ -z $EHASH ]] || sysctl -qw "net.ipv4.tcp_child_ehash_entries=$ehash_before" || :
}
trap cleanup EXIT
if [[ -n $EHASH ]]; then
  [[ $EHASH =~ ^[0-9]+$ && $ehash_before != unsupported ]] || die "EHASH=$EHASH: want a number, on a kernel with tcp_child_ehash_entries (5.19+)"
  sysctl -qw "net.ipv4.tcp_child_ehash_entries=$EHASH" || die "cannot set net.ipv4.tcp_child_ehash_entries (root?)"
fi

running=$(k get pods -A --field-selector "spec.nodeName=$node" --no-headers | wc -l)
want=$((max - running))
((want > 0)) || die "node $node already runs $running of $max pods"
log "node $node: maxPods $max, $running pods, adding $want listener pods"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: listeners, namespace: $NS}
spec:
  replicas: $want
  selector: {matchLabels: {app: listeners}}
  template:
    metadata: {labels: {app: listeners}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: listener
        image: $IMAGE
        imagePullPolicy: Never
        args: ["--listen", "tcp4://0.0.0.0:8080", "--listen", "tcp4://127.0.0.1:9000", "--listen", "tcp4://127.0.0.1:9001", "--listen", "udp6://[::1]:5353"]
        resources: {requests: {cpu: 1m, memory: 4Mi}}
EOF
k -n "$NS" rollout status deployment/listeners --timeout=600s >&2
log "$(k get pods -A --field-selector "spec.nodeName=$node,status.phase=Running" --no-headers | wc -l) pods running on $node"

# wait_report FIELD WHAT: until the node's report lists every bench pod
# under status.FIELD (a scan saw them all), at most 120 s.
wait_report() {
  local got=0
  for _ in $(seq 1 120); do
    got=$(k get nodebindreport "$node" -o jsonpath="{.status.$1[?(@.namespace==\"$NS\")].name}" | wc -w)
    ((got >= want)) && return 0
    sleep 1
  done
  die "the report lists $got of $want bench pods $2 after 120 s"
}

# Measure from a scan that saw every bench pod (the pods' start-up is not
# part of the window).
wait_report discovery.pods "in its discovery"

echo "# bench/agentnode.sh on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo ' (dirty)'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), net.ipv4.tcp_child_ehash_entries=$(cat /proc/sys/net/ipv4/tcp_child_ehash_entries 2>/dev/null || echo unsupported)"
measure discovery
k apply -f - >/dev/null <<EOF
apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: listeners, namespace: $NS}
spec:
  podSelector: {matchLabels: {app: listeners}}
  ports: [{port: 9000, endPort: 9001}]
  enforcementAction: Audit
EOF
# Wait for the agent to have scanned the newly protected pods.
wait_report pods "as protected"
measure protected
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
