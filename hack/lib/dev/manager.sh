# shellcheck shell=bash
# loopguard's manager on the host: its binary, replicas, identity
# (ServiceAccount token), webhook registration and readiness. Sourced by hack/dev.sh (after hack/lib/common.sh and hack/lib/node.sh),
# never executed: functions only.

manager_binary() {
  if [[ -n $MANAGER_BIN ]]; then
    [[ -x $MANAGER_BIN ]] || die "MANAGER_BIN=$MANAGER_BIN is not an executable file"
    echo "$MANAGER_BIN"
  else
    echo "$ROOT/bin/manager"
  fi
}

build_manager() {
  local t0
  step "manager binary"
  if [[ -n $MANAGER_BIN ]]; then
    manager_binary >/dev/null
    ok "using MANAGER_BIN=$MANAGER_BIN (not built)"
    return 0
  fi
  [[ -d $ROOT/cmd/manager ]] || die "cmd/manager does not exist (yet): set MANAGER_BIN to a manager binary"
  t0=$(now_ms)
  info "… go build -o bin/manager ./cmd/manager"
  go build -o "$ROOT/bin/manager" ./cmd/manager || die "building ./cmd/manager failed"
  ok "bin/manager built ($(elapsed "$t0"))"
}

# replica_name I: the component name of manager replica I (the first one
# keeps the historical name "manager": its PID file, log and fingerprint).
replica_name() { if (($1 == 1)); then echo manager; else echo "manager-$1"; fi; }
replica_webhook_port() { if ((REPLICAS == 1)); then echo "$WEBHOOK_PORT"; else echo $((WEBHOOK_PORT + $1)); fi; }
replica_metrics_port() { echo $((METRICS_PORT + $1 - 1)); }
replica_probe_port() { echo $((PROBE_PORT + $1 - 1)); }

# manager_args [I]: MANAGER_CMD for replica I (default 1).
manager_args() {
  local i=${1:-1} extra=() ha=(--leader-elect=false) auth=()
  read -ra extra <<<"$MANAGER_ARGS"
  if ((DEV_WEBHOOK_AUTH)); then
    auth=(--webhook-client-ca="$PKI/webhook/client-ca.crt" --webhook-client-names="$WEBHOOK_CLIENT_NAME")
  fi
  if ((REPLICAS > 1)); then
    # The drain delay lets a SIGTERMed replica finish what the API server
    # sent it, closing its connections, while the proxy sends new ones to
    # the others.
    ha=(--leader-elect=true --leader-election-namespace="$MANAGER_NAMESPACE" --webhook-drain-delay=3s)
  fi
  MANAGER_CMD=(
    "$(manager_binary)"
    --kubeconfig="$MANAGER_KUBECONFIG"
    --webhook-bind-address=127.0.0.1
    --webhook-port="$(replica_webhook_port "$i")"
    --webhook-url="https://127.0.0.1:$WEBHOOK_PORT" --webhook-ca-file="$PKI/webhook/ca.crt"
    --webhook-config-name=loopguard-validating-webhook-configuration
    --webhook-excluded-namespaces="kube-system,kube-public,kube-node-lease,$MANAGER_NAMESPACE"
    --webhook-cert-dir="$PKI/webhook" --cert-rotation=false
    "${auth[@]}"
    --metrics-bind-address="127.0.0.1:$(replica_metrics_port "$i")"
    --health-probe-bind-address="127.0.0.1:$(replica_probe_port "$i")"
    "${ha[@]}"
    "${extra[@]}"
  )
}

# running_managers: the names of the manager replicas and of the webhook
# proxy that run (whatever REPLICAS was when they started).
running_managers() {
  local f n
  for f in "$RUN"/manager*.pid "$RUN"/webhook-proxy.pid; do
    [[ -e $f ]] || continue
    n=$(basename "$f" .pid)
    if pid_of "$n" >/dev/null; then echo "$n"; fi
  done
  return 0
}

# install_manager_identity: apply the RBAC of config/default (its Namespace,
# ServiceAccount, roles and bindings only, as test/e2e/rbac_test.go does)
# and write .dev/manager.kubeconfig, which authenticates as that
# ServiceAccount with a 24h token in .dev/manager.token (client-go re-reads
# a tokenFile, so a running manager picks up the token of the next 'up').
install_manager_identity() {
  local t0 rendered token
  step "manager identity: ServiceAccount $MANAGER_NAMESPACE/$MANAGER_SA with the RBAC of config/default"
  t0=$(now_ms)
  rendered=$(go tool kustomize build "$ROOT/config/default") || die "kustomize build config/default failed"
  awk '
    function flush() { if (keep) printf "---\n%s", doc; doc = ""; keep = 0 }
    /^---$/ { flush(); next }
    { doc = doc $0 "\n" }
    /^kind: (Namespace|ServiceAccount|ClusterRole|ClusterRoleBinding|Role|RoleBinding)$/ { keep = 1 }
    END { flush() }
  ' <<<"$rendered" >"$DEV/manager-rbac.yaml"
  grep -q "^kind: ServiceAccount$" "$DEV/manager-rbac.yaml" || die "config/default renders no ServiceAccount"
  k apply --server-side --force-conflicts --field-manager=loopguard-dev -f "$DEV/manager-rbac.yaml" 2>&1 |
    sed 's/^/  /' || die "applying the RBAC of config/default failed"
  token=$(k create token "$MANAGER_SA" -n "$MANAGER_NAMESPACE" --duration=24h) ||
    die "kubectl create token $MANAGER_SA -n $MANAGER_NAMESPACE failed"
  (umask 077 && printf '%s' "$token" >"$MANAGER_TOKEN.new") && mv -f "$MANAGER_TOKEN.new" "$MANAGER_TOKEN"
  (umask 077 && cat >"$MANAGER_KUBECONFIG.new" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: loopguard-dev
  cluster:
    server: https://$API_ADDR:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $MANAGER_SA
  user:
    tokenFile: $MANAGER_TOKEN
contexts:
- name: $MANAGER_SA
  context: {cluster: loopguard-dev, user: $MANAGER_SA, namespace: $MANAGER_NAMESPACE}
current-context: $MANAGER_SA
EOF
  ) && mv -f "$MANAGER_KUBECONFIG.new" "$MANAGER_KUBECONFIG"
  ok "${MANAGER_KUBECONFIG#"$ROOT"/}: system:serviceaccount:$MANAGER_NAMESPACE:$MANAGER_SA ($(elapsed "$t0"))"
}

# render_webhooks: write the host-pointing webhook configuration to
# .dev/webhook.yaml.new (empty when the project has none yet).
render_webhooks() {
  local t0 rendered new=$DEV/webhook.yaml.new
  : >"$new"
  if [[ ! -f $WEBHOOK_KUSTOMIZE_DIR/kustomization.yaml ]]; then
    warn "${WEBHOOK_KUSTOMIZE_DIR#"$ROOT"/}/kustomization.yaml not found: no webhook configuration is registered"
    return 0
  fi
  t0=$(now_ms)
  info "… rendering ${WEBHOOK_KUSTOMIZE_DIR#"$ROOT"/} (slow only the first time: go tool compiles kustomize)"
  rendered=$(go tool kustomize build "$WEBHOOK_KUSTOMIZE_DIR") ||
    die "kustomize build ${WEBHOOK_KUSTOMIZE_DIR#"$ROOT"/} failed"
  "$DEVTOOL" webhook --ca "$PKI/webhook/ca.crt" --url-base "https://127.0.0.1:$WEBHOOK_PORT" \
    <<<"$rendered" >"$new" || die "rewriting the webhook configuration for the host failed"
  ok "rendered the webhook configuration for https://127.0.0.1:$WEBHOOK_PORT ($(elapsed "$t0"))"
}

# unregister_webhooks: remove what was registered last (.dev/webhook.yaml), so
# the API server never calls a webhook whose server is stopped:
# failurePolicy Fail would block the very objects the webhook guards.
unregister_webhooks() {
  [[ -s $DEV/webhook.yaml ]] && pid_of kube-apiserver >/dev/null || return 0
  k delete --ignore-not-found -f "$DEV/webhook.yaml" 2>&1 | sed 's/^/  /' ||
    die "could not delete the previous webhook configuration (${DEV#"$ROOT"/}/webhook.yaml)"
  rm -f "$DEV/webhook.yaml"
}

# register_webhooks: apply the rendered configuration (call only once the
# manager's /readyz answered: no window with a registered, absent webhook)
# and wait until the webhook server completes a TLS handshake with its CA.
register_webhooks() {
  local new=$DEV/webhook.yaml.new
  if [[ -s $DEV/webhook.yaml ]] && ! cmp -s "$new" "$DEV/webhook.yaml"; then
    unregister_webhooks # drops configurations no longer rendered
  fi
  mv -f "$new" "$DEV/webhook.yaml"
  [[ -s $DEV/webhook.yaml ]] || return 0
  k apply --server-side --force-conflicts --field-manager=loopguard-dev -f "$DEV/webhook.yaml" 2>&1 |
    sed 's/^/  /' || die "applying ${DEV#"$ROOT"/}/webhook.yaml failed"
  wait_until "webhook answering TLS on 127.0.0.1:$WEBHOOK_PORT" 70 manager \
    "$DEVTOOL" wait-webhook --url "https://127.0.0.1:$WEBHOOK_PORT/" --ca "$PKI/webhook/ca.crt" --timeout 60s \
    --cert "$PKI/webhook/apiserver-client.crt" --key "$PKI/webhook/apiserver-client.key"
}

wait_manager_ready() {
  local i=${1:-1} port
  port=$(replica_probe_port "$i")
  wait_until "$(replica_name "$i") /readyz on 127.0.0.1:$port" 90 "$(replica_name "$i")" \
    "$DEVTOOL" probe --url "http://127.0.0.1:$port/readyz" --status 200
}

# start_manager_bg: (re)start the REPLICAS manager processes (and, with
# more than one, the webhook proxy) in the background; a replica whose
# binary and arguments are unchanged keeps running. With the proxy already
# in front of the same replicas, they restart one at a time and the webhook
# stays registered (a rolling update); otherwise the webhook is unregistered
# while no server answers it.
start_manager_bg() {
  local t0 i n pid fp restart=() rolling=0 backends=() list
  if ((REPLICAS == 1)); then
    step "manager (webhook :$WEBHOOK_PORT, metrics :$METRICS_PORT, probes :$PROBE_PORT)"
  else
    step "$REPLICAS managers with leader election (proxy :$WEBHOOK_PORT → webhooks :$((WEBHOOK_PORT + 1))…, metrics :$METRICS_PORT…, probes :$PROBE_PORT…)"
  fi
  t0=$(now_ms)
  install_manager_identity
  for ((i = 1; i <= REPLICAS; i++)); do
    n=$(replica_name "$i")
    backends+=("127.0.0.1:$(replica_webhook_port "$i")")
    manager_args "$i"
    # By content: 'up' after a rebuild restarts the manager, otherwise not.
    fp=$(command_fingerprint content "${MANAGER_CMD[@]}" "GOMEMLIMIT=$MANAGER_GOMEMLIMIT")
    if pid=$(pid_of "$n"); then
      if [[ $(cat "$RUN/$n.fingerprint" 2>/dev/null) == "$fp" ]]; then
        ok "$n already running (pid $pid), binary and arguments unchanged"
        continue
      fi
      info "$n binary or arguments changed: restarting it"
    fi
    restart+=("$i")
  done
  list=$(IFS=,; echo "${backends[*]}")
  if ((REPLICAS > 1)) && pid=$(pid_of webhook-proxy) &&
    [[ " $(tr '\0' ' ' <"/proc/$pid/cmdline")" == *" --backends=$list "* ]]; then
    rolling=1
  fi
  # The configuration stays while managers restart: the manager fills it
  # (scoped to the policies) and never empties it, so guarded namespaces
  # fail closed meanwhile and the others are not called at all.
  # Replicas beyond REPLICAS; the proxy unless it fronts exactly these.
  for n in $(running_managers); do
    case $n in
      manager) ;;
      webhook-proxy) ((rolling)) || stop_proc webhook-proxy ;;
      manager-*) ((${n#manager-} <= REPLICAS)) || stop_proc "$n" 20 ;;
    esac
  done
  render_webhooks
  for i in "${restart[@]}"; do
    n=$(replica_name "$i")
    manager_args "$i"
    stop_proc "$n" 20
    require_ports_free "$n" "$(replica_webhook_port "$i")" "$(replica_metrics_port "$i")" "$(replica_probe_port "$i")"
    # A process on the host has no container memory limit for the manager
    # to derive its soft limit from (internal/memlimit): it is given as the
    # Go runtime reads it, to the manager only.
    (if [[ -n $MANAGER_GOMEMLIMIT ]]; then export GOMEMLIMIT=$MANAGER_GOMEMLIMIT; fi; start_bg "$n" "${MANAGER_CMD[@]}")
    command_fingerprint content "${MANAGER_CMD[@]}" "GOMEMLIMIT=$MANAGER_GOMEMLIMIT" >"$RUN/$n.fingerprint"
    info "started $n (pid $(<"$RUN/$n.pid"))"
    # One at a time: with the proxy, the others answer meanwhile.
    wait_manager_ready "$i"
  done
  for ((i = 1; i <= REPLICAS; i++)); do
    [[ " ${restart[*]} " == *" $i "* ]] || wait_manager_ready "$i"
  done
  if ((REPLICAS > 1)); then
    ensure_started webhook-proxy "$WEBHOOK_PORT" "$DEVTOOL" proxy --listen="127.0.0.1:$WEBHOOK_PORT" \
      --backends="$list" --id="$RUN/webhook-proxy"
  fi
  register_webhooks
  ok "manager ready ($(elapsed "$t0"))"
}
