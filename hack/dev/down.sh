# shellcheck shell=bash
# hack/dev.sh down: stop everything and restore the host.
# Sourced by hack/dev.sh, never executed: defines cmd_down.

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
