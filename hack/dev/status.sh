# shellcheck shell=bash
# hack/dev.sh status: show what runs.
# Sourced by hack/dev.sh, never executed: defines cmd_status.

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
  agent_status
  return "$all"
}
