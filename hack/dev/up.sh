# shellcheck shell=bash
# hack/dev.sh up: start everything in the background (idempotent).
# Sourced by hack/dev.sh, never executed: defines cmd_up.

cmd_up() {
  local t0
  t0=$(now_ms)
  prepare
  start_control_plane
  node_up
  install_crds
  start_manager_bg
  agent_up
  ok "up in $(elapsed "$t0")"
  usage_hint
}
