# shellcheck shell=bash
# The dev node's teardown: stopping the components and putting back what
# the node changed on the host (mounts, cgroups, netfilter, interfaces,
# sysctls, paths), and node_status. Sourced by hack/lib/node.sh, never executed: functions only.

node_any_running() {
  local n
  for n in "${NODE_COMPONENTS[@]}"; do pid_of "$n" >/dev/null && return 0; done
  return 1
}

# node_kill_containers: every container, sandboxes included, through
# containerd while it answers. Pod network namespaces are freed with their
# mounts below; the kubelet is already stopped, so nothing restarts them.
node_kill_containers() {
  local ids id i
  pid_of containerd >/dev/null || return 0
  ids=$(ctr_ tasks ls -q 2>/dev/null) || return 0
  [[ -n $ids ]] || return 0
  info "killing $(wc -w <<<"$ids") container(s)"
  for id in $ids; do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || :; done
  for ((i = 0; i < 50; i++)); do
    [[ $(ctr_ tasks ls 2>/dev/null) == *RUNNING* ]] || break
    sleep 0.1
  done
  for id in $ids; do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || :; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers delete "$id" >/dev/null 2>&1 || :
  done
}

# node_cgroup_pids: processes still in the node's cgroups (pods).
node_cgroup_pids() {
  local m
  while read -r m; do
    if [[ -d $m/$NODE_CGROUP ]]; then find "$m/$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null || :; fi
  done < <(cgroup_mounts) | sort -un
}

# node_shim_pids: the containerd shims of our containerd: each is started
# with '-address <our socket>', a path no other containerd uses.
node_shim_pids() {
  ps -eo pid=,args= | awk -v want=" -address $CONTAINERD_SOCK" '
    $2 ~ /containerd-shim/ && index($0 " ", want " ") { print $1 }'
}

# node_kill_leftovers: pod processes and shims that outlived containerd.
node_kill_leftovers() {
  local pids i
  pids=$( (node_cgroup_pids; node_shim_pids) | sort -un | tr '\n' ' ')
  [[ -n ${pids// /} ]] || return 0
  info "killing leftover pod processes and shims: $pids"
  # shellcheck disable=SC2086 # a list of PIDs
  kill -KILL $pids 2>/dev/null || :
  for ((i = 0; i < 50; i++)); do
    pids=$( (node_cgroup_pids; node_shim_pids) | tr '\n' ' ')
    [[ -n ${pids// /} ]] || return 0
    sleep 0.1
  done
  warn "processes survived SIGKILL: $pids"
}

# dev_mounts: mount points under .dev/, deepest first (octal escapes such as
# \040 for a space are decoded).
dev_mounts() {
  awk '{print $5}' /proc/self/mountinfo | while read -r m; do
    m=$(printf '%b' "$m")
    if [[ $m == "$DEV"/* ]]; then echo "$m"; fi
  done | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2-
}

node_unmount() {
  local m n=0 left
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
    n=$((n + 1))
  done < <(dev_mounts)
  ((n == 0)) || info "unmounted $n mount(s) under ${DEV#"$ROOT"/}/"
  left=$(dev_mounts)
  [[ -z $left ]] || warn "still mounted:"$'\n'"$left"
}

node_remove_cgroups() {
  local m
  while read -r m; do
    [[ -d $m/$NODE_CGROUP ]] || continue
    find "$m/$NODE_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || :
    [[ ! -d $m/$NODE_CGROUP ]] || warn "could not remove cgroup $m/$NODE_CGROUP (processes left in it?)"
  done < <(cgroup_mounts)
}

# restore_lines: turn iptables-save output of one table into an
# iptables-restore --noflush script that removes every KUBE-*, CNI-* and
# LGNP-* (the NetworkPolicy enforcer's)
# chain and every rule elsewhere that jumps to one (empty if none).
restore_lines() {
  awk -v table="$1" '
    /^:(KUBE|CNI|LGNP)-/ { sub(/^:/, ""); chains[++n] = $1; next }
    /^-A / && $2 !~ /^(KUBE|CNI|LGNP)-/ && / -[jg] (KUBE|CNI|LGNP)-/ { sub(/^-A /, "-D "); dels[++m] = $0 }
    END {
      if (n + m == 0) exit
      print "*" table
      for (i = 1; i <= m; i++) print dels[i]
      for (i = 1; i <= n; i++) print "-F " chains[i]
      for (i = 1; i <= n; i++) print "-X " chains[i]
      print "COMMIT"
    }'
}

# node_clean_netfilter: kube-proxy's nftables tables; the iptables chains of
# the kubelet (KUBE-FIREWALL, canaries), kube-proxy's iptables mode and the
# CNI portmap plugin; then the iptables-nft tables that did not exist before
# the node and are empty now.
node_clean_netfilter() {
  local fam name cmd table script
  if command -v nft >/dev/null; then
    for fam in ip ip6; do
      if nft list table "$fam" kube-proxy >/dev/null 2>&1; then nft delete table "$fam" kube-proxy; fi
    done
    # The enforcer's library tries its own table on every sync (it cannot
    # load here, see hack/enforcer): removed should one ever have loaded.
    if nft list table inet kube-network-policies >/dev/null 2>&1; then nft delete table inet kube-network-policies; fi
  fi
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null || continue
    for table in filter nat mangle raw; do
      script=$("$cmd-save" -t "$table" 2>/dev/null | restore_lines "$table") || :
      [[ -z $script ]] || "$cmd-restore" --noflush <<<"$script" || warn "$cmd: could not remove the KUBE-/CNI- chains of table $table"
    done
  done
  command -v nft >/dev/null && [[ -f $NODE_BEFORE/nft-tables ]] || return 0
  nft list tables 2>/dev/null | while read -r _ fam name; do
    if grep -qx "table $fam $name" "$NODE_BEFORE/nft-tables"; then continue; fi
    case $fam in ip) cmd=iptables ;; ip6) cmd=ip6tables ;; *) continue ;; esac
    case $name in filter | nat | mangle | raw | security) ;; *) continue ;; esac
    # Captured first: grep -q closing the pipe early would fail the
    # pipeline and look like "no rules".
    script=$("$cmd-save" -t "$name" 2>/dev/null) || continue
    if ! grep -q '^-A ' <<<"$script"; then nft delete table "$fam" "$name" || :; fi
  done
}

# leftover_netfilter: what node_clean_netfilter should have removed.
leftover_netfilter() {
  local cmd
  if command -v nft >/dev/null; then nft list tables 2>/dev/null | grep -wE 'kube-proxy|kube-network-policies' || :; fi
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null || continue
    "$cmd-save" 2>/dev/null | grep -E '^:(KUBE|CNI|LGNP)-|-[jg] (KUBE|CNI|LGNP)-' | sed "s/^/$cmd: /" || :
  done
}

node_remove_interfaces() {
  local veth
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || return 0
  for veth in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$veth" 2>/dev/null || :
  done
  ip link delete "$NODE_BRIDGE" && info "deleted interface $NODE_BRIDGE"
}

node_restore_sysctls() {
  local key val cur f
  [[ -f $NODE_BEFORE/sysctl ]] || return 0
  while IFS='=' read -r key val; do
    f=$(sysctl_path "$key")
    [[ -r $f ]] || continue
    cur=$(<"$f")
    [[ $cur == "$val" ]] && continue
    if echo "$val" >"$f" 2>/dev/null; then
      info "restored $key = $val (was $cur)"
    else
      warn "could not restore $key to $val (is $cur)"
    fi
  done <"$NODE_BEFORE/sysctl"
}

# leftover_sysctls: recorded sysctls whose value differs now.
leftover_sysctls() {
  local key val f
  [[ -f $NODE_BEFORE/sysctl ]] || return 0
  while IFS='=' read -r key val; do
    f=$(sysctl_path "$key")
    if [[ -r $f && $(<"$f") != "$val" ]]; then echo "$key=$(<"$f") (was $val)"; fi
  done <"$NODE_BEFORE/sysctl"
  return 0
}

existed_before() { [[ -f $NODE_BEFORE/paths ]] && grep -qxF "$1" "$NODE_BEFORE/paths"; }


# node_clean_host_paths: the node's traces outside .dev/; a directory goes
# only if the node created it and it is empty (or, for /run/containerd,
# holds only our shims' sockets and no containerd of the system runs).
node_clean_host_paths() {
  local l
  if [[ -d /var/log/containers ]]; then
    for l in /var/log/containers/*; do
      if [[ -L $l && $(readlink "$l") == "$NODE_STATE"/* ]]; then rm -f "$l"; fi
    done
    existed_before /var/log/containers || rmdir /var/log/containers 2>/dev/null || :
  fi
  if [[ -d /var/lib/cni ]]; then
    # libcni caches each ADD as <network>-<container id>-<interface>
    # (containers killed without a CNI DEL keep theirs): ours are network
    # loopguard-dev, and containerd's cni-loopback entries whose result
    # names a network namespace under our state dir.
    for l in /var/lib/cni/results/*; do
      [[ -f $l ]] || continue
      if [[ ${l##*/} == loopguard-dev-* ]] || grep -qF "\"$NODE_STATE/" "$l"; then
        rm -f "$l"
      fi
    done
    if ! existed_before /var/lib/cni; then
      rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || :
    fi
  fi
  if [[ -d /run/containerd ]] && ! existed_before /run/containerd && [[ ! -S /run/containerd/containerd.sock ]]; then
    rm -rf --one-file-system /run/containerd/s 2>/dev/null || :
    rmdir /run/containerd 2>/dev/null || :
  fi
}

node_stop_components() {
  local n
  for n in "${NODE_COMPONENTS[@]}"; do
    # Containers go while containerd still answers, after the kubelet
    # stopped (it would restart them).
    if [[ $n == containerd ]]; then node_kill_containers; fi
    stop_proc "$n" 20
  done
}

# node_leftovers: print everything node_down must have removed and did not.
node_leftovers() {
  local out
  out=$( (node_cgroup_pids; node_shim_pids) | tr '\n' ' ')
  [[ -z ${out// /} ]] || echo "processes: $out"
  out=$(dev_mounts)
  [[ -z $out ]] || echo "mounts: $out"
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then echo "interface: $NODE_BRIDGE"; fi
  out=$(leftover_netfilter)
  [[ -z $out ]] || echo "netfilter: $out"
  out=$(leftover_sysctls)
  [[ -z $out ]] || echo "sysctls: $out"
  return 0
}

# node_down: stop the node and put the host back as it was. Safe to run
# twice, and when no node ever ran (it then does nothing). Fails when
# something could not be removed, after trying everything.
node_down() {
  local left
  if [[ ! -e $NODE_STATE && ! -e $NODE_BEFORE ]] && ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    return 0
  fi
  if [[ $(id -u) != 0 ]]; then
    warn "a dev node was set up (${NODE_STATE#"$ROOT"/}); removing it needs root: sudo hack/dev.sh down"
    return 0
  fi
  node_stop_components
  node_kill_leftovers
  node_unmount
  node_remove_cgroups
  node_clean_netfilter
  node_remove_interfaces
  node_restore_sysctls
  node_clean_host_paths
  left=$(node_leftovers)
  if [[ -n $left ]]; then
    warn "the node left this behind (kept ${NODE_BEFORE#"$ROOT"/} so a second 'down' can retry):"$'\n'"$left"
    return 1
  fi
  # Only now: nothing is mounted below it any more.
  rm -rf --one-file-system "$NODE_STATE" "$NODE_BEFORE"
  ok "node removed; host state restored"
}

# node_status: status lines of the node components (dev.sh status).
node_status() {
  local n pid cond rc=0
  [[ -e $NODE_STATE ]] || return 0
  for n in containerd kubelet kube-scheduler kube-proxy netpol-enforcer; do
    if pid=$(pid_of "$n"); then
      printf '  %-24s running (pid %s)\n' "$n" "$pid"
    else
      printf '  %-24s stopped\n' "$n"
      rc=1
    fi
  done
  if [[ -n ${KUBECTL:-} ]] && pid_of kube-apiserver >/dev/null && cond=$(node_condition); then
    printf '  %-24s Ready=%s\n' "node $NODE_NAME" "${cond%%|*}"
  fi
  return "$rc"
}
