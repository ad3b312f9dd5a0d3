# shellcheck shell=bash
# The dev control plane: etcd, kube-apiserver, kube-controller-manager
# and loopguard's CRDs. Sourced by hack/dev.sh (after hack/lib/common.sh and hack/lib/node.sh),
# never executed: functions only.

start_etcd() {
  mkdir -p "$DEV/etcd"
  chmod 700 "$DEV/etcd"
  # Peer traffic is plain HTTP but bound to loopback and there is one member.
  # --unsafe-no-fsync: the data is thrown away by 'down' anyway.
  # DEV_ETCD_QUOTA_BYTES: etcd's default 2 GiB unless a large bench needs more.
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
    --unsafe-no-fsync=true \
    --quota-backend-bytes="${DEV_ETCD_QUOTA_BYTES:-2147483648}"
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
  # DEV_KCM_ARGS: extra flags (the scale bench's node grace period).
  mkdir -p "$DEV/kube-controller-manager"
  # shellcheck disable=SC2086 # DEV_KCM_ARGS is a list of flags
  ensure_started kube-controller-manager "$KCM_PORT" "$K8S_BIN/kube-controller-manager" ${DEV_KCM_ARGS:-} \
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
