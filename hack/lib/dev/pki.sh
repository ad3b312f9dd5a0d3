# shellcheck shell=bash
# The dev cluster's PKI (.dev/pki: CAs, serving and client certificates,
# kubeconfigs) and the API server's AdmissionConfiguration. Sourced by hack/dev.sh (after hack/lib/common.sh and hack/lib/node.sh),
# never executed: functions only.

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
