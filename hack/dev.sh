#!/usr/bin/env bash
# Local dev cluster for loopguard: etcd, kube-apiserver and
# kube-controller-manager as host processes, the CRDs, and the operator with
# its validating webhook served on the host; and, when running as root on
# Linux, a real node — containerd, the kubelet, kube-scheduler and kube-proxy
# (hack/lib/node.sh) — so pods really run. TLS and client-certificate
# authentication everywhere; all state is in .dev/. See docs/testing.md.
#
# Addresses: without a node everything listens on 127.0.0.1. With a node the
# API server and the kubelet listen on the node address 10.245.0.1, which the
# harness puts on its own bridge lgbr0 (pods: 10.244.0.0/24); everything
# else stays on 127.0.0.1. Never a wildcard, never the machine's uplink.
#
#   hack/dev.sh up      start everything in the background (idempotent)
#   hack/dev.sh run     like up, but the manager runs in the foreground;
#                       Ctrl-C stops it and the cluster
#   hack/dev.sh down    stop everything, delete the etcd data and the node's
#                       state, and restore what the node changed on the host
#                       (sysctls, netfilter, mounts, cgroups, interfaces);
#                       keeps the PKI; safe to run twice
#   hack/dev.sh status  show what runs
#   hack/dev.sh restart NAME
#                       restart one running component with the same command
#                       line (e.g. kube-apiserver, to test that loopguard
#                       survives an API server restart)
#   hack/dev.sh stop managers
#                       stop the manager(s) and the webhook proxy but leave
#                       the webhook registered: what the cluster sees when
#                       loopguard is down (failurePolicy Fail where a policy
#                       applies, nothing elsewhere); 'up' again restarts them
#
# Environment:
#   DEV_NODE               auto (default): a node when root on Linux,
#                          installing containerd & co. from Debian packages if
#                          missing; if it cannot start, say why and go on
#                          without it. 1: try also when not root. require: no
#                          node is a failure (tests). 0: no node.
#   DEV_NODE_PROXY_MODE    kube-proxy mode (default nftables; or iptables)
#   MANAGER_BIN            manager binary to run instead of building
#                          ./cmd/manager into bin/manager
#   MANAGER_ARGS           extra manager flags (split on whitespace)
#   REPLICAS               manager processes (default 1). With 2 or more
#                          they elect a leader (Lease loopguard.loopguard.io
#                          in loopguard-system); replica i serves its webhook
#                          on 127.0.0.1:(9443+i), metrics on :(8442+i) and
#                          probes on :(8080+i); a TCP round-robin
#                          (bin/devtool proxy) on 127.0.0.1:9443 fronts them,
#                          so the API server's one URL reaches every replica.
#
# The manager runs as the ServiceAccount of config/rbac
# (loopguard-system/loopguard-controller-manager), with the RBAC that
# config/default installs, through .dev/manager.kubeconfig (a token file,
# refreshed by every 'up'): a missing permission shows in its log at once.
#   WEBHOOK_KUSTOMIZE_DIR  kustomization rendering the webhook configuration
#                          (default config/overlays/dev-webhook)
#   DEV_WEBHOOK_AUTH       1 (default): the API server authenticates to the
#                          webhook with a client certificate (its
#                          AdmissionConfiguration, .dev/admission/) and the
#                          manager runs with --webhook-client-ca, so nothing
#                          else can post AdmissionReviews to it
#                          (docs/webhook-auth.md). 0: the manager serves any
#                          caller (e.g. a MANAGER_BIN without the flag).
#   DEV_DIR                state directory (default .dev)
#   DEV_PORT_OFFSET        added to every port of the control plane and the
#                          manager (default 0), so a second cluster (e.g. the
#                          one 'make compare' runs) can live beside the first;
#                          with an offset there is no node (it owns
#                          machine-wide state: bridge, containerd, iptables)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Paths given relative to the caller's directory must survive the cd below.
abs() { if [[ -z $1 || $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
MANAGER_BIN=$(abs "${MANAGER_BIN:-}")
WEBHOOK_KUSTOMIZE_DIR=$(abs "${WEBHOOK_KUSTOMIZE_DIR:-$ROOT/config/overlays/dev-webhook}")
DEV=$(abs "${DEV_DIR:-$ROOT/.dev}")
cd "$ROOT"

PKI=$DEV/pki
LOGS=$DEV/logs
RUN=$DEV/run
ADMIN_KUBECONFIG=$DEV/kubeconfig
KCM_KUBECONFIG=$DEV/controller-manager.kubeconfig
K8S_BIN=$ROOT/bin/k8s/current
DEVTOOL=$ROOT/bin/devtool
MANAGER_ARGS=${MANAGER_ARGS:-}
MANAGER_KUBECONFIG=$DEV/manager.kubeconfig
MANAGER_TOKEN=$DEV/manager.token
MANAGER_NAMESPACE=loopguard-system
MANAGER_SA=loopguard-controller-manager
REPLICAS=${REPLICAS:-1}
DEV_WEBHOOK_AUTH=${DEV_WEBHOOK_AUTH:-1}
[[ $DEV_WEBHOOK_AUTH =~ ^[01]$ ]] || { echo "DEV_WEBHOOK_AUTH=$DEV_WEBHOOK_AUTH: want 0 or 1" >&2; exit 2; }
ADMISSION=$DEV/admission
# The name the API server's client certificate for the webhook carries,
# which the manager pins (--webhook-client-names).
WEBHOOK_CLIENT_NAME=kube-apiserver-webhook-client
[[ $REPLICAS =~ ^[1-9]$ ]] || { echo "REPLICAS=$REPLICAS: want 1 to 9" >&2; exit 2; }

PORT_OFFSET=${DEV_PORT_OFFSET:-0}
[[ $PORT_OFFSET =~ ^[0-9]{1,4}$ ]] || { echo "DEV_PORT_OFFSET=$PORT_OFFSET: want 0 to 9999" >&2; exit 2; }
if ((PORT_OFFSET != 0)); then
  [[ ${DEV_NODE:-auto} == require ]] && { echo "DEV_PORT_OFFSET=$PORT_OFFSET: a second cluster has no node" >&2; exit 2; }
  DEV_NODE=0
fi
ETCD_PORT=$((23790 + PORT_OFFSET))
ETCD_PEER_PORT=$((23800 + PORT_OFFSET))
APISERVER_PORT=$((6443 + PORT_OFFSET))
KCM_PORT=$((10257 + PORT_OFFSET))
WEBHOOK_PORT=$((9443 + PORT_OFFSET))
# hack/emptywebhook, the admit-everything floor of make bench-registration,
# authenticated like the manager's webhook.
EMPTY_WEBHOOK_PORT=$((WEBHOOK_PORT + 7))
METRICS_PORT=$((8443 + PORT_OFFSET))
PROBE_PORT=$((8081 + PORT_OFFSET))
SERVICE_CIDR=10.96.0.0/16

# shellcheck source=hack/lib/common.sh
source "$ROOT/hack/lib/common.sh"
# shellcheck source=hack/lib/node.sh
source "$ROOT/hack/lib/node.sh"

# ---------------------------------------------------------------- tools

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

# ---------------------------------------------------------------- pki

ensure_pki() {
  local t0 changed
  step "PKI in ${PKI#"$ROOT"/}"
  t0=$(now_ms)
  mkdir -p "$DEV" "$LOGS" "$RUN"
  chmod 700 "$DEV"
  changed=$("$DEVTOOL" pki --dir "$PKI" --node-name "$NODE_NAME" --node-ip "$NODE_IP") || die "PKI generation failed"
  if [[ -n $changed ]]; then
    info "(re)generated: $(echo "$changed" | tr '\n' ' ')"
    if any_running; then
      # Running components hold the old certificates in memory.
      warn "PKI changed while components run: restarting them"
      stop_all
      if grep -qxE 'ca\.crt|sa\.key' <<<"$changed"; then
        # Data signed for the old CA / SA key (tokens, secrets) is useless.
        wipe_etcd
      fi
    fi
  fi
  # The API server moves between 127.0.0.1 and the node address with the
  # node: every client holding the old address must restart.
  if [[ -s $RUN/api-address && $(<"$RUN/api-address") != "$API_ADDR" ]] && any_running; then
    warn "the API server moves from $(<"$RUN/api-address") to $API_ADDR: restarting the running components"
    stop_all
  fi
  echo "$API_ADDR" >"$RUN/api-address"
  "$DEVTOOL" kubeconfig --server "https://$API_ADDR:$APISERVER_PORT" --ca "$PKI/ca.crt" \
    --cert "$PKI/admin.crt" --key "$PKI/admin.key" --user loopguard-dev-admin --out "$ADMIN_KUBECONFIG"
  "$DEVTOOL" kubeconfig --server "https://$API_ADDR:$APISERVER_PORT" --ca "$PKI/ca.crt" \
    --cert "$PKI/controller-manager.crt" --key "$PKI/controller-manager.key" \
    --user system:kube-controller-manager --out "$KCM_KUBECONFIG"
  node_kubeconfigs
  write_admission_config
  ok "PKI and kubeconfigs ready, API server at https://$API_ADDR:$APISERVER_PORT ($(elapsed "$t0"))"
}

# write_admission_config: the API server's AdmissionConfiguration, whose
# webhook kubeconfig gives it a client certificate for loopguard's webhook
# ("Authenticate apiservers" in the Kubernetes docs on dynamic admission
# control). A users entry is matched by the webhook's host:port (a URL
# webhook: the host manager, or the proxy in front of the replicas, which
# passes TLS through) or by its Service's DNS name ('*.svc' matches
# <service>.<namespace>.svc on port 443: the in-cluster install of
# test/incluster). No current-context: every other webhook gets no
# credentials, as without the file.
write_admission_config() {
  mkdir -p "$ADMISSION"
  (umask 077 && cat >"$ADMISSION/webhook-kubeconfig.yaml.new" <<EOF
apiVersion: v1
kind: Config
users:
- name: "127.0.0.1:$WEBHOOK_PORT"
  user:
    client-certificate: $PKI/webhook/apiserver-client.crt
    client-key: $PKI/webhook/apiserver-client.key
- name: "127.0.0.1:$EMPTY_WEBHOOK_PORT"
  user:
    client-certificate: $PKI/webhook/apiserver-client.crt
    client-key: $PKI/webhook/apiserver-client.key
- name: "*.svc"
  user:
    client-certificate: $PKI/webhook/apiserver-client.crt
    client-key: $PKI/webhook/apiserver-client.key
EOF
  ) && mv -f "$ADMISSION/webhook-kubeconfig.yaml.new" "$ADMISSION/webhook-kubeconfig.yaml"
  cat >"$ADMISSION/config.yaml.new" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $ADMISSION/webhook-kubeconfig.yaml
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $ADMISSION/webhook-kubeconfig.yaml
EOF
  mv -f "$ADMISSION/config.yaml.new" "$ADMISSION/config.yaml"
}

# ---------------------------------------------------------------- control plane

start_etcd() {
  mkdir -p "$DEV/etcd"
  chmod 700 "$DEV/etcd"
  # Peer traffic is plain HTTP but bound to loopback and there is one member.
  # --unsafe-no-fsync: the data is thrown away by 'down' anyway.
  ensure_started etcd "$ETCD_PORT $ETCD_PEER_PORT" "$K8S_BIN/etcd" \
    --name=loopguard-dev \
    --data-dir="$DEV/etcd" \
    --listen-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="loopguard-dev=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new \
    --cert-file="$PKI/etcd-server.crt" \
    --key-file="$PKI/etcd-server.key" \
    --trusted-ca-file="$PKI/ca.crt" \
    --client-cert-auth=true \
    --unsafe-no-fsync=true
  wait_until "etcd /health" 60 etcd \
    "$DEVTOOL" probe --url "https://127.0.0.1:$ETCD_PORT/health" --ca "$PKI/ca.crt" \
    --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" --status 200
}

start_apiserver() {
  local reconciler=lease
  mkdir -p "$DEV/kube-apiserver"
  # --endpoint-reconciler-type=none without a node: the 'kubernetes' Service
  # endpoints would be 127.0.0.1, which Endpoints validation rejects (log
  # spam only). With a node they are the node address, which pods reach
  # through the Service.
  [[ $API_ADDR != 127.0.0.1 ]] || reconciler=none
  # The kubelet flags: the API server proxies logs, exec and port-forward
  # to the kubelet as kube-apiserver-kubelet-client and verifies its
  # serving cert (signed by the dev CA for the node address).
  # --admission-control-config-file: its client certificate for the
  # webhook, read at start (hence its content in the fingerprint).
  FP_EXTRA=$(cat "$ADMISSION/config.yaml" "$ADMISSION/webhook-kubeconfig.yaml" | sha256sum | cut -d' ' -f1) \
    ensure_started kube-apiserver "$APISERVER_PORT" "$K8S_BIN/kube-apiserver" \
    --bind-address="$API_ADDR" \
    --secure-port="$APISERVER_PORT" \
    --advertise-address="$API_ADDR" \
    --cert-dir="$DEV/kube-apiserver" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --etcd-servers="https://127.0.0.1:$ETCD_PORT" \
    --etcd-cafile="$PKI/ca.crt" \
    --etcd-certfile="$PKI/apiserver-etcd-client.crt" \
    --etcd-keyfile="$PKI/apiserver-etcd-client.key" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true \
    --enable-admission-plugins=NodeRestriction \
    --admission-control-config-file="$ADMISSION/config.yaml" \
    --endpoint-reconciler-type="$reconciler" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key"
  wait_until "kube-apiserver /readyz" 120 kube-apiserver k get --raw /readyz --request-timeout=5s
}

start_controller_manager() {
  # --flex-volume-plugin-dir: its default is created under /usr/libexec.
  mkdir -p "$DEV/kube-controller-manager"
  ensure_started kube-controller-manager "$KCM_PORT" "$K8S_BIN/kube-controller-manager" \
    --bind-address=127.0.0.1 \
    --secure-port="$KCM_PORT" \
    --cert-dir="$DEV/kube-controller-manager" \
    --kubeconfig="$KCM_KUBECONFIG" \
    --authentication-kubeconfig="$KCM_KUBECONFIG" \
    --authorization-kubeconfig="$KCM_KUBECONFIG" \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" \
    --cluster-signing-key-file="$PKI/ca.key" \
    --controllers='*' \
    --leader-elect=false \
    --flex-volume-plugin-dir="$DEV/kube-controller-manager/flexvolume"
}

start_control_plane() {
  local t0
  step "control plane (etcd :$ETCD_PORT, kube-apiserver :$APISERVER_PORT, kube-controller-manager :$KCM_PORT)"
  t0=$(now_ms)
  start_etcd
  start_apiserver
  start_controller_manager
  # The default ServiceAccount is created by the controller-manager, so its
  # presence proves the controller-manager is talking to the API server.
  wait_until "ServiceAccount default/default (controller-manager working)" 90 kube-controller-manager \
    k get serviceaccount default --namespace default --request-timeout=5s
  ok "control plane ready ($(elapsed "$t0"))"
}

install_crds() {
  local t0 dir=$ROOT/config/crd/bases
  step "CRDs from ${dir#"$ROOT"/}"
  t0=$(now_ms)
  if ! compgen -G "$dir/*.yaml" >/dev/null; then
    warn "no CRDs in ${dir#"$ROOT"/}: skipped"
    return 0
  fi
  k apply --server-side --force-conflicts --field-manager=loopguard-dev -f "$dir" 2>&1 | sed 's/^/  /' ||
    die "applying the CRDs failed"
  # AdminNetworkPolicy (networkPolicy: Admin), from the module loopguard
  # builds against; the node's enforcer implements it.
  local anp
  anp=$(go list -m -f '{{.Dir}}' sigs.k8s.io/network-policy-api)/config/crd/standard
  k apply --server-side --force-conflicts --field-manager=loopguard-dev \
    -f "$anp/policy.networking.k8s.io_adminnetworkpolicies.yaml" \
    -f "$anp/policy.networking.k8s.io_baselineadminnetworkpolicies.yaml" 2>&1 | sed 's/^/  /' ||
    die "applying the AdminNetworkPolicy CRDs from $anp failed"
  info "… waiting for the CRDs to be Established"
  k wait --for condition=established crd --all --timeout=60s 2>&1 | sed 's/^/  /' ||
    die "the CRDs did not become Established within 60s"
  ok "CRDs established ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------- manager

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
    --webhook-cert-dir="$PKI/webhook" --cert-rotation=false
    --webhook-url="https://127.0.0.1:$WEBHOOK_PORT" --webhook-ca-file="$PKI/webhook/ca.crt"
    --webhook-config-name=loopguard-validating-webhook-configuration
    --webhook-excluded-namespaces="kube-system,kube-public,kube-node-lease,$MANAGER_NAMESPACE"
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
    fp=$(command_fingerprint content "${MANAGER_CMD[@]}")
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
    start_bg "$n" "${MANAGER_CMD[@]}"
    command_fingerprint content "${MANAGER_CMD[@]}" >"$RUN/$n.fingerprint"
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

# cmd_restart NAME: stop component NAME and start it again with the very
# command line it ran with (its fingerprint stays valid, so 'up' keeps it).
cmd_restart() {
  local name=${1:-} pid argv=() fp t0
  [[ -n $name ]] || die "usage: hack/dev.sh restart NAME (a component of hack/dev.sh status)"
  pid=$(pid_of "$name") || die "$name does not run"
  t0=$(now_ms)
  mapfile -d "" -t argv <"/proc/$pid/cmdline"
  fp=$(cat "$RUN/$name.fingerprint" 2>/dev/null || true)
  step "restarting $name (pid $pid)"
  stop_proc "$name" 20
  start_bg "$name" "${argv[@]}"
  [[ -z $fp ]] || echo "$fp" >"$RUN/$name.fingerprint"
  info "started $name (pid $(<"$RUN/$name.pid"))"
  case $name in
    kube-apiserver)
      KUBECTL=$(kubectl_bin)
      wait_until "kube-apiserver /readyz" 120 kube-apiserver k get --raw /readyz --request-timeout=5s
      ;;
    manager) wait_manager_ready 1 ;;
    manager-*) wait_manager_ready "${name#manager-}" ;;
  esac
  ok "restarted $name in $(elapsed "$t0")"
}

# cmd_stop managers: stop every manager replica and the proxy, leaving the
# webhook configuration registered: loopguard's outage as the API server
# sees it.
cmd_stop() {
  local n
  [[ ${1:-} == managers ]] || die "usage: hack/dev.sh stop managers"
  step "stopping the manager(s), leaving the webhook registered (failurePolicy Fail applies)"
  for n in $(running_managers); do stop_proc "$n" 20; done
}

# ---------------------------------------------------------------- commands

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
  node_host_up
  ensure_pki
  preflight_ports
}

cmd_up() {
  local t0
  t0=$(now_ms)
  prepare
  start_control_plane
  node_up
  install_crds
  start_manager_bg
  ok "up in $(elapsed "$t0")"
  usage_hint
}

cmd_down() {
  local t0 left rc=0
  t0=$(now_ms)
  step "stopping the dev cluster"
  if any_running; then
    stop_all
  else
    info "nothing running"
    rm -f "$RUN"/*.pid "$RUN"/*.fingerprint 2>/dev/null || true
  fi
  rm -f "$MANAGER_TOKEN" "$MANAGER_KUBECONFIG" "$DEV/manager-rbac.yaml"
  # The node is machine-wide: only the cluster without an offset owns it.
  if ((PORT_OFFSET == 0)); then node_down || rc=1; fi
  if [[ -d $DEV/etcd ]]; then wipe_etcd; fi
  # They describe registrations in the cluster just wiped.
  rm -f "$DEV/webhook.yaml" "$DEV/webhook.yaml.new"
  info "kept ${PKI#"$ROOT"/} (certificates are reused by the next up)"
  # Report, never kill, strays: a 'tail -f .dev/logs/…' must survive.
  left=$(pgrep -af -- "${DEV//./\\.}/" || true)
  [[ -z $left ]] || warn "processes still referencing .dev/ (not started by dev.sh up?):"$'\n'"$left"
  if ((rc != 0)); then
    printf '✗ down incomplete after %s: the node left something behind (above); run hack/dev.sh down again\n' "$(elapsed "$t0")" >&2
    return "$rc"
  fi
  ok "down in $(elapsed "$t0")"
}

cmd_run() {
  local t0 rc=0 pid log n
  t0=$(now_ms)
  # From here on any exit — Ctrl-C, SIGTERM, a failed step, the manager
  # exiting — stops the manager and the control plane.
  # Traps may fire inside a function whose output is redirected (a quiet
  # probe in wait_until), so they write to the saved fds 3 and 4.
  exec 3>&1 4>&2
  trap 'trap "" INT TERM; cmd_down >&3 2>&4' EXIT
  trap 'echo >&3; info "interrupted" >&3; exit 130' INT
  trap 'info "terminated" >&3; exit 143' TERM
  ((REPLICAS == 1)) || die "REPLICAS=$REPLICAS: 'run' runs one manager in the foreground; use 'up' for several"
  prepare
  start_control_plane
  node_up
  install_crds
  install_manager_identity
  step "manager in the foreground (Ctrl-C stops it and the control plane)"
  manager_args
  unregister_webhooks
  for n in $(running_managers); do
    info "a background $n runs (from 'up'): stopping it"
    stop_proc "$n"
  done
  render_webhooks
  require_ports_free manager "$WEBHOOK_PORT" "$METRICS_PORT" "$PROBE_PORT"
  # Own session, like the other components, so Ctrl-C reaches only this
  # script and the manager gets exactly one SIGTERM from stop_proc (a second
  # signal makes controller-runtime exit immediately). Its output goes to the
  # terminal and to the log; tee ignores Ctrl-C so the manager's shutdown
  # logs are not cut off by a broken pipe.
  log=$LOGS/manager.log
  [[ -f $log ]] && mv -f "$log" "$log.prev"
  if command -v setsid >/dev/null; then
    setsid "${MANAGER_CMD[@]}" </dev/null 3>&- 4>&- > >(trap '' INT TERM; exec tee "$log") 2>&1 &
  else
    "${MANAGER_CMD[@]}" </dev/null 3>&- 4>&- > >(trap '' INT TERM; exec tee "$log") 2>&1 &
  fi
  pid=$!
  echo "$pid" >"$RUN/manager.pid"
  # Lets an 'up' from another terminal see this manager as current.
  command_fingerprint content "${MANAGER_CMD[@]}" >"$RUN/manager.fingerprint"
  wait_manager_ready
  register_webhooks
  ok "up in $(elapsed "$t0")"
  usage_hint
  wait "$pid" || rc=$?
  # wait returns early only for a trapped signal, whose trap exits; here the
  # manager itself has exited.
  info "manager exited with status $rc"
  exit "$rc"
}

cmd_status() {
  local n pid all=0 hooks i
  for n in etcd kube-apiserver kube-controller-manager $(pid_of manager >/dev/null || echo manager) $(running_managers); do
    if pid=$(pid_of "$n"); then
      printf '  %-24s running (pid %s)\n' "$n" "$pid"
    else
      printf '  %-24s stopped\n' "$n"
      all=1
    fi
  done
  if pid_of kube-apiserver >/dev/null && [[ -x $DEVTOOL ]]; then
    KUBECTL=$(kubectl_bin)
    if k get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
      printf '  %-24s ok\n' "apiserver /readyz"
      hooks=$(k get validatingwebhookconfigurations -o name 2>/dev/null | tr '\n' ' ')
      printf '  %-24s %s\n' "webhook configurations" "${hooks:-none}"
    else
      printf '  %-24s not ready\n' "apiserver /readyz"
      all=1
    fi
  fi
  for n in $(running_managers); do
    [[ $n == manager* && -x $DEVTOOL ]] || continue
    i=1
    [[ $n == manager ]] || i=${n#manager-}
    if "$DEVTOOL" probe --url "http://127.0.0.1:$(replica_probe_port "$i")/readyz" --status 200 >/dev/null 2>&1; then
      printf '  %-24s ok\n' "$n /readyz"
    else
      printf '  %-24s not ready\n' "$n /readyz"
      all=1
    fi
  done
  if pid_of kube-apiserver >/dev/null && [[ -x $DEVTOOL ]]; then
    hooks=$(k get lease loopguard.loopguard.io -n "$MANAGER_NAMESPACE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
    [[ -z $hooks ]] || printf '  %-24s %s\n' "leader" "$hooks"
  fi
  node_status || all=1
  return "$all"
}

main() {
  local cmd=${1:-}
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    run) cmd_run ;;
    status) cmd_status ;;
    restart) cmd_restart "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    *)
      echo "usage: hack/dev.sh up|down|run|status|restart NAME|stop managers" >&2
      exit 2
      ;;
  esac
}

main "$@"
