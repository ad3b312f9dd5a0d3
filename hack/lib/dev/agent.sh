# shellcheck shell=bash
# The node agent (cmd/agent) on the dev node, so that 'up' and 'run' show
# runtime verification and discovery without another step: its image
# (loopguard-agent:dev, imported into the node's containerd, never pulled)
# and config/overlays/agent-dev (a short scan interval, discovery on).
# Without a node nothing here runs. Sourced by hack/dev.sh (after
# hack/lib/node.sh), never executed: functions only.
#
#   DEV_AGENT  1 (default): run the agent on the node; 0: do not (an agent
#              that an earlier 'up' installed is removed)

DEV_AGENT=${DEV_AGENT:-1}
[[ $DEV_AGENT =~ ^[01]$ ]] || { echo "DEV_AGENT=$DEV_AGENT: want 0 or 1" >&2; exit 2; }
AGENT_KUSTOMIZE_DIR=$ROOT/config/overlays/agent-dev
AGENT_NAMESPACE=loopguard-agent
AGENT_DAEMONSET=loopguard-agent
AGENT_READY_TIMEOUT=${DEV_AGENT_READY_TIMEOUT:-120}

# agent_build: the agent's binary and image, before anything starts (a
# compile error fails fast); agent_up imports it.
agent_build() {
  local log
  [[ $NODE == 1 && $DEV_AGENT == 1 ]] || return 0
  log=$("$IMAGES_TOOL" build --repo "$ROOT" --out "$IMAGES_OUT" --only agent --timeout 20m 2>&1) ||
    { node_fail "building the agent image failed: $log"; return 0; }
  indent <<<"$log"
}

# agent_up: import the image, apply the overlay, wait for the agent's first
# report (its readiness). A failure is fatal under DEV_NODE=require only.
agent_up() {
  local rc
  [[ $NODE == 1 ]] || return 0
  if [[ $DEV_AGENT == 0 ]]; then
    info "agent: off (DEV_AGENT=0)"
    k delete -k "$AGENT_KUSTOMIZE_DIR" --ignore-not-found --wait=false >/dev/null 2>&1 || :
    return 0
  fi
  set +e
  (
    set -e
    agent_start
  )
  rc=$?
  set -e
  ((rc == 0)) && return 0
  [[ $(node_mode) != require ]] || die "the node agent failed to start (DEV_NODE=require)"
  warn "the node agent failed to start (above): the cluster goes on without it (DEV_AGENT=0 skips it)"
}

agent_start() {
  local t0 out existed=0
  step "node agent (${AGENT_KUSTOMIZE_DIR#"$ROOT"/}: discovery on)"
  t0=$(now_ms)
  out=$("$IMAGES_TOOL" build --repo "$ROOT" --out "$IMAGES_OUT" --only agent --skip-go-build --address "$CONTAINERD_SOCK" 2>&1) ||
    die "importing the agent image failed:"$'\n'"$out"
  indent <<<"$out"
  k -n "$AGENT_NAMESPACE" get daemonset "$AGENT_DAEMONSET" >/dev/null 2>&1 && existed=1
  k apply --server-side --force-conflicts --field-manager=loopguard-dev --request-timeout=30s -k "$AGENT_KUSTOMIZE_DIR" >/dev/null ||
    die "applying ${AGENT_KUSTOMIZE_DIR#"$ROOT"/} failed"
  # The tag stays :dev: a new image needs new pods.
  if ((existed)) && [[ $out == *"built and imported"* ]]; then
    info "new agent image: restarting the agent"
    k -n "$AGENT_NAMESPACE" rollout restart daemonset "$AGENT_DAEMONSET" >/dev/null
  fi
  k -n "$AGENT_NAMESPACE" rollout status daemonset "$AGENT_DAEMONSET" --timeout="${AGENT_READY_TIMEOUT}s" >/dev/null ||
    die "the agent is not ready after ${AGENT_READY_TIMEOUT}s:"$'\n'"$(k -n "$AGENT_NAMESPACE" logs "daemonset/$AGENT_DAEMONSET" --tail=15 2>&1)"
  ok "agent ready, NodeBindReport $NODE_NAME written ($(elapsed "$t0"))"
}

# agent_status: the agent's line in 'dev.sh status'.
agent_status() {
  local ready
  [[ -e $NODE_STATE && -n ${KUBECTL:-} ]] || return 0
  ready=$(k -n "$AGENT_NAMESPACE" get daemonset "$AGENT_DAEMONSET" --request-timeout=5s \
    -o jsonpath='{.status.numberReady}/{.status.desiredNumberScheduled}' 2>/dev/null) || ready="not installed"
  printf '  %-24s %s\n' "agent (DaemonSet)" "$ready"
}
