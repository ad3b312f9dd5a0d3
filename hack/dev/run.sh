# shellcheck shell=bash
# hack/dev.sh run: like up, with the manager in the foreground.
# Sourced by hack/dev.sh, never executed: defines cmd_run.

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
  agent_up
  ok "up in $(elapsed "$t0")"
  usage_hint
  wait "$pid" || rc=$?
  # wait returns early only for a trapped signal, whose trap exits; here the
  # manager itself has exited.
  info "manager exited with status $rc"
  exit "$rc"
}
