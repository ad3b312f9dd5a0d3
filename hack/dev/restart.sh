# shellcheck shell=bash
# hack/dev.sh restart NAME: restart one running component with the same command line.
# Sourced by hack/dev.sh, never executed: defines cmd_restart.

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
