# shellcheck shell=bash
# Helpers for hack/dev.sh: output with timings, background process management
# by PID file, port checks and bounded waits. Sourced, never executed.
# Expects LOGS and RUN (directories) and DEV (the .dev directory) to be set.

# ---------------------------------------------------------------- output

now_ms() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
  else
    date +%s%3N
  fi
}

# elapsed START_MS → "1.2s"
elapsed() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

step() { printf '▸ %s\n' "$*"; }
info() { printf '  %s\n' "$*"; }
ok() { printf '  ✓ %s\n' "$*"; }
warn() { printf '  ! %s\n' "$*" >&2; }
die() {
  printf '✗ %s\n' "$*" >&2
  exit 1
}

# die_with_log NAME MESSAGE: fail showing the end of NAME's log, which is
# where the real reason for a failed start almost always is.
die_with_log() {
  local msg=$2 log=$LOGS/$1.log
  printf '✗ %s\n' "$msg" >&2
  if [[ -s $log ]]; then
    printf '  last 30 lines of %s:\n' "${log#"$PWD"/}" >&2
    tail -n 30 "$log" | sed 's/^/    │ /' >&2
  fi
  printf '  full log: %s — what did start keeps running; stop it with hack/dev.sh down\n' "${log#"$PWD"/}" >&2
  exit 1
}

# ---------------------------------------------------------------- processes

# alive PID: true if PID runs and is not a zombie (a zombie child of this
# shell would otherwise look alive to kill -0 until it is reaped).
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# pid_of NAME: print the PID of component NAME if it runs. A PID is trusted
# only if its command line still mentions .dev/, so a PID reused by an
# unrelated process after a reboot is never signalled.
pid_of() {
  local f=$RUN/$1.pid pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DEV/" || return 1
  echo "$pid"
}

# start_bg NAME CMD...: run CMD detached, output to $LOGS/NAME.log (the
# previous log is kept as NAME.log.prev). setsid puts it in its own session
# so a Ctrl-C in the terminal reaches only this script, which then stops
# the components in order. fds 3 and 4 ('run' keeps the terminal there)
# are closed so a daemon does not hold the terminal open.
start_bg() {
  local name=$1
  shift
  local log=$LOGS/$name.log
  [[ -f $log ]] && mv -f "$log" "$log.prev"
  if command -v setsid >/dev/null; then
    setsid "$@" >"$log" 2>&1 </dev/null 3>&- 4>&- &
  else
    nohup "$@" >"$log" 2>&1 </dev/null 3>&- 4>&- &
  fi
  echo $! >"$RUN/$name.pid"
}

# command_fingerprint content|stat CMD...: a hash of the command line and of
# the binary, by content (the manager: rebuilt often, hashing is cheap) or by
# resolved path, size and mtime (the 100 MB control-plane binaries, which
# build-k8s.sh never rewrites in place).
command_fingerprint() {
  local mode=$1 bin
  shift
  bin=$(readlink -f "$1")
  {
    if [[ $mode == content ]]; then sha256sum <"$bin"; else stat -c '%n %s %Y' "$bin"; fi
    printf '%s\n' "$@"
  } | sha256sum | cut -d' ' -f1
}

# ensure_started NAME "PORT..." CMD...: start CMD as component NAME unless it
# already runs with the same binary and flags; restart it if either changed.
# FP_EXTRA, when set, is part of the fingerprint too: a hash of the config
# files a component reads, which its flags do not show.
ensure_started() {
  local name=$1 ports=$2 fp pid port_list=()
  shift 2
  fp=$(command_fingerprint stat "$@")
  if [[ -n ${FP_EXTRA:-} ]]; then
    fp=$(printf '%s %s\n' "$fp" "$FP_EXTRA" | sha256sum | cut -d' ' -f1)
  fi
  if pid=$(pid_of "$name"); then
    if [[ $(cat "$RUN/$name.fingerprint" 2>/dev/null) == "$fp" ]]; then
      ok "$name already running (pid $pid)"
      return 0
    fi
    info "$name binary or flags changed: restarting it"
    stop_proc "$name" 20
  fi
  read -ra port_list <<<"$ports"
  require_ports_free "$name" "${port_list[@]}"
  start_bg "$name" "$@"
  echo "$fp" >"$RUN/$name.fingerprint"
  info "started $name (pid $(<"$RUN/$name.pid"))"
}

# stop_proc NAME [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL.
stop_proc() {
  local name=$1 grace=${2:-15} pid t0 i
  if ! pid=$(pid_of "$name"); then
    rm -f "$RUN/$name.pid" "$RUN/$name.fingerprint"
    return 0
  fi
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    warn "$name (pid $pid) ignored SIGTERM for ${grace}s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.fingerprint"
  ok "stopped $name (pid $pid) in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- ports

port_in_use() {
  local port=$1
  if command -v ss >/dev/null; then
    [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]
  else
    # Connecting succeeds only if something listens on loopback.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# wait_ports_free SECONDS PORT...: wait (bounded) until no PORT is in use.
# A process that was just stopped may hold its sockets a moment after it
# stopped counting as alive (its threads are still being torn down).
wait_ports_free() {
  local secs=$1 port i busy
  shift
  for ((i = 0; i < secs * 10; i++)); do
    busy=""
    for port in "$@"; do
      if port_in_use "$port"; then busy=$port; fi
    done
    [[ -n $busy ]] || return 0
    sleep 0.1
  done
  return 0
}

# require_ports_free WHAT PORT...: fail naming the port and, where ss can
# tell, the process holding it.
require_ports_free() {
  local what=$1 port holder
  shift
  for port in "$@"; do
    port_in_use "$port" || continue
    wait_ports_free 3 "$port"
    port_in_use "$port" || continue
    holder=""
    if command -v ss >/dev/null; then
      holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(.*)' | head -n 1 || true)
    fi
    die "cannot start $what: port $port is already in use${holder:+ by $holder}" \
      "— stop that process, or run 'hack/dev.sh down' if it is a leftover dev component"
  done
}

# ---------------------------------------------------------------- waiting

# wait_until DESC TIMEOUT_S NAME CMD...: retry CMD (quietly) until it succeeds.
# Fails with NAME's log if NAME's process dies or TIMEOUT_S passes; NAME may
# be "" when no single process is to blame.
wait_until() {
  local desc=$1 timeout=$2 name=$3
  shift 3
  local t0 next=10 secs
  t0=$(now_ms)
  # Say "waiting" only if the first try fails: an idempotent up stays terse.
  if "$@" >/dev/null 2>&1; then
    ok "$desc"
    return 0
  fi
  info "… waiting for $desc"
  while true; do
    if "$@" >/dev/null 2>&1; then
      ok "$desc ($(elapsed "$t0"))"
      return 0
    fi
    # The pid file was written by this run, so liveness is enough: pid_of
    # also checks the command line, which, just after start_bg, can still be
    # the forked shell's before it execs (seen as a false "exited").
    if [[ -n $name ]] && ! alive "$(cat "$RUN/$name.pid" 2>/dev/null)"; then
      die_with_log "$name" "$name exited while waiting for $desc"
    fi
    secs=$((($(now_ms) - t0) / 1000))
    if ((secs >= timeout)); then
      if [[ -n $name ]]; then
        die_with_log "$name" "timed out after ${timeout}s waiting for $desc"
      fi
      die "timed out after ${timeout}s waiting for $desc"
    fi
    if ((secs >= next)); then
      info "… still waiting for $desc (${secs}s of ${timeout}s)"
      next=$((next + 10))
    fi
    sleep 0.5
  done
}
