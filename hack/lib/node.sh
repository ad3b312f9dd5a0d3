# shellcheck shell=bash
# The dev node for hack/dev.sh: containerd, the kubelet, kube-scheduler and
# kube-proxy as host processes, so pods really run. Sourced after common.sh,
# never executed. Expects ROOT, DEV, PKI, LOGS, RUN, K8S_BIN, DEVTOOL and the
# k() kubectl wrapper of dev.sh (hack/lib/dev/tools.sh). Its functions are in
# hack/lib/node/*.sh, sourced at the end.
#
# Network rule: the node uses only what it creates — the bridge lgbr0 with
# the pod gateway 10.244.0.1/24 and the node address 10.245.0.1/32 — and
# loopback. Nothing listens on a wildcard or on the machine's uplink
# address, pods get no default resolver and no masquerading, IP forwarding
# stays off (nothing from a pod leaves this machine), and containerd's image
# pulls go to a closed loopback proxy (no registry request, not even a DNS
# query, leaves it either).
#
# Host state the node changes is recorded before the first start (in
# .dev/node-before/) and put back by node_down: sysctls the kubelet sets,
# netfilter tables and chains, mounts, cgroups, interfaces and the few paths
# outside .dev/ that the kubelet and containerd insist on.

NODE_NAME=loopguard-dev-node
NODE_IP=10.245.0.1
NODE_BRIDGE=lgbr0
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
POD_PREFIX=24
NODE_CGROUP=loopguard-dev
NODE_STATE=$DEV/node
NODE_CONF=$NODE_STATE/config
NODE_BEFORE=$DEV/node-before
CONTAINERD_SOCK=$NODE_STATE/containerd/containerd.sock
CNI_BIN_DIR=/usr/lib/cni
SANDBOX_IMAGE=docker.io/library/loopguard-pause:dev
# shellcheck disable=SC2034 # used by dev.sh (usage hint) and the tests
LISTENER_IMAGE=loopguard-listener:dev
IMAGES_OUT=$ROOT/bin/images
IMAGES_TOOL=$ROOT/bin/images-tool
KUBELET_KUBECONFIG=$DEV/kubelet.kubeconfig
SCHEDULER_KUBECONFIG=$DEV/kube-scheduler.kubeconfig
PROXY_KUBECONFIG=$DEV/kube-proxy.kubeconfig
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
SCHEDULER_PORT=10259
PROXY_METRICS_PORT=10249
PROXY_HEALTHZ_PORT=10256
NODE_PROXY_MODE=${DEV_NODE_PROXY_MODE:-nftables}
# 30 keeps a runaway test small; the agent bench raises it to the kubelet default, 110.
NODE_MAX_PODS=${DEV_NODE_MAX_PODS:-30}
NODE_READY_TIMEOUT=${DEV_NODE_READY_TIMEOUT:-90}
# Stop order: nothing may start a pod while the runtime goes away; the
# NetworkPolicy enforcer first (it removes its iptables hook as it exits).
NODE_COMPONENTS=(netpol-enforcer kube-scheduler kube-proxy kubelet containerd)
ENFORCER_BIN=$ROOT/bin/enforcer

# Sysctls the kubelet (kernel.*, vm.*), the CNI plugins and kube-proxy
# (net.*) may change. Per-interface ones go with the interfaces.
NODE_SYSCTLS=(
  kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal
  net.netfilter.nf_conntrack_udp_timeout net.netfilter.nf_conntrack_udp_timeout_stream
)
# Paths outside .dev/ that the node creates whatever it is told: the
# kubelet's /var/log/containers symlinks, libcni's result cache, and
# containerd 1.6's shim sockets (/run/containerd/s).
NODE_HOST_PATHS=(/var/log/containers /var/lib/cni /run/containerd)

# NODE is 1 while this run has (or is bringing up) a node; API_ADDR is where
# the API server listens: the node address with a node, else 127.0.0.1.
NODE=0
API_ADDR=127.0.0.1

# The node's parts, functions only (hack/lib/node/).
# shellcheck source=hack/lib/node/mode.sh
source "$ROOT/hack/lib/node/mode.sh"
# shellcheck source=hack/lib/node/host.sh
source "$ROOT/hack/lib/node/host.sh"
# shellcheck source=hack/lib/node/components.sh
source "$ROOT/hack/lib/node/components.sh"
# shellcheck source=hack/lib/node/teardown.sh
source "$ROOT/hack/lib/node/teardown.sh"
