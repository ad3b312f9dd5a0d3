# shellcheck shell=bash
# hack/dev.sh stop managers: stop the manager(s), leave the webhook registered.
# Sourced by hack/dev.sh, never executed: defines cmd_stop.

# cmd_stop managers: stop every manager replica and the proxy, leaving the
# webhook configuration registered: loopguard's outage as the API server
# sees it.
cmd_stop() {
  local n
  [[ ${1:-} == managers ]] || die "usage: hack/dev.sh stop managers"
  step "stopping the manager(s), leaving the webhook registered (failurePolicy Fail applies)"
  for n in $(running_managers); do stop_proc "$n" 20; done
}
