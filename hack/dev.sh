#!/usr/bin/env bash
# Local dev cluster for loopguard: etcd, kube-apiserver and
# kube-controller-manager as host processes, the CRDs, and the operator with
# its validating webhook served on the host; and, when running as root on
# Linux, a real node — containerd, the kubelet, kube-scheduler and kube-proxy
# (hack/lib/node.sh) — so pods really run. TLS and client-certificate
# authentication everywhere; all state is in .dev/. See docs/testing.md.
#
# Layout: this file holds the configuration (the environment below) and the
# dispatcher; each subcommand is hack/dev/<subcommand>.sh, the parts they
# share are hack/lib/dev/*.sh (tools, pki, controlplane, manager, lifecycle),
# the node is hack/lib/node.sh with hack/lib/node/*.sh, the node agent on
# it hack/lib/dev/agent.sh, and the output and
# process helpers are hack/lib/common.sh. All of them only define functions.
#
# Addresses: without a node everything listens on 127.0.0.1. With a node the
# API server and the kubelet listen on the node address 10.245.0.1, which the
# harness puts on its own bridge lgbr0 (pods: 10.244.0.0/24); everything
# else stays on 127.0.0.1. Never a wildcard, never the machine's uplink.
#
#   hack/dev.sh up      start everything in the background (idempotent)
#   hack/dev.sh run     like up, but the manager runs in the foreground;
#                       Ctrl-C stops it and the cluster
#   hack/dev.sh down    stop everything, delete the etcd data and the node's
#                       state, and restore what the node changed on the host
#                       (sysctls, netfilter, mounts, cgroups, interfaces);
#                       keeps the PKI; safe to run twice
#   hack/dev.sh status  show what runs
#   hack/dev.sh restart NAME
#                       restart one running component with the same command
#                       line (e.g. kube-apiserver, to test that loopguard
#                       survives an API server restart)
#   hack/dev.sh stop managers
#                       stop the manager(s) and the webhook proxy but leave
#                       the webhook registered: what the cluster sees when
#                       loopguard is down (failurePolicy Fail where a policy
#                       applies, nothing elsewhere); 'up' again restarts them
#
# Environment:
#   DEV_NODE               auto (default): a node when root on Linux,
#                          installing containerd & co. from Debian packages if
#                          missing; if it cannot start, say why and go on
#                          without it. 1: try also when not root. require: no
#                          node is a failure (tests). 0: no node.
#   DEV_AGENT              1 (default): with a node, run the node agent on it
#                          (config/overlays/agent-dev, discovery on); 0: not
#   DEV_NODE_PROXY_MODE    kube-proxy mode (default nftables; or iptables)
#   DEV_NODE_MAX_PODS      the kubelet's maxPods (default 30; 110 is the kubelet default)
#   MANAGER_BIN            manager binary to run instead of building
#                          ./cmd/manager into bin/manager
#   MANAGER_ARGS           extra manager flags (split on whitespace)
#   MANAGER_GOMEMLIMIT     the manager's Go soft memory limit (e.g. 576MiB),
#                          what it sets itself in a pod from 0.9 of its
#                          container's memory limit; default none
#   REPLICAS               manager processes (default 1). With 2 or more
#                          they elect a leader (Lease loopguard.loopguard.io
#                          in loopguard-system); replica i serves its webhook
#                          on 127.0.0.1:(9443+i), metrics on :(8442+i) and
#                          probes on :(8080+i); a TCP round-robin
#                          (bin/devtool proxy) on 127.0.0.1:9443 fronts them,
#                          so the API server's one URL reaches every replica.
#
# The manager runs as the ServiceAccount of config/rbac
# (loopguard-system/loopguard-controller-manager), with the RBAC that
# config/default installs, through .dev/manager.kubeconfig (a token file,
# refreshed by every 'up'): a missing permission shows in its log at once.
#   WEBHOOK_KUSTOMIZE_DIR  kustomization rendering the webhook configuration
#                          (default config/overlays/dev-webhook)
#   DEV_WEBHOOK_AUTH       1 (default): the API server authenticates to the
#                          webhook with a client certificate (its
#                          AdmissionConfiguration, .dev/admission/) and the
#                          manager runs with --webhook-client-ca, so nothing
#                          else can post AdmissionReviews to it
#                          (docs/webhook-auth.md). 0: the manager serves any
#                          caller (e.g. a MANAGER_BIN without the flag).
#   DEV_DIR                state directory (default .dev)
#   DEV_PORT_OFFSET        added to every port of the control plane and the
#                          manager (default 0), so a second cluster (e.g. the
#                          one 'make compare' runs) can live beside the first;
#                          with an offset there is no node (it owns
#                          machine-wide state: bridge, containerd, iptables)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Paths given relative to the caller's directory must survive the cd below.
abs() { if [[ -z $1 || $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
MANAGER_BIN=$(abs "${MANAGER_BIN:-}")
WEBHOOK_KUSTOMIZE_DIR=$(abs "${WEBHOOK_KUSTOMIZE_DIR:-$ROOT/config/overlays/dev-webhook}")
DEV=$(abs "${DEV_DIR:-$ROOT/.dev}")
cd "$ROOT"

PKI=$DEV/pki
LOGS=$DEV/logs
RUN=$DEV/run
ADMIN_KUBECONFIG=$DEV/kubeconfig
KCM_KUBECONFIG=$DEV/controller-manager.kubeconfig
K8S_BIN=$ROOT/bin/k8s/current
DEVTOOL=$ROOT/bin/devtool
MANAGER_ARGS=${MANAGER_ARGS:-}
MANAGER_GOMEMLIMIT=${MANAGER_GOMEMLIMIT:-}
MANAGER_KUBECONFIG=$DEV/manager.kubeconfig
MANAGER_TOKEN=$DEV/manager.token
MANAGER_NAMESPACE=loopguard-system
MANAGER_SA=loopguard-controller-manager
REPLICAS=${REPLICAS:-1}
DEV_WEBHOOK_AUTH=${DEV_WEBHOOK_AUTH:-1}
[[ $DEV_WEBHOOK_AUTH =~ ^[01]$ ]] || { echo "DEV_WEBHOOK_AUTH=$DEV_WEBHOOK_AUTH: want 0 or 1" >&2; exit 2; }
ADMISSION=$DEV/admission
# The name the API server's client certificate for the webhook carries,
# which the manager pins (--webhook-client-names).
WEBHOOK_CLIENT_NAME=kube-apiserver-webhook-client
[[ $REPLICAS =~ ^[1-9]$ ]] || { echo "REPLICAS=$REPLICAS: want 1 to 9" >&2; exit 2; }

PORT_OFFSET=${DEV_PORT_OFFSET:-0}
[[ $PORT_OFFSET =~ ^[0-9]{1,4}$ ]] || { echo "DEV_PORT_OFFSET=$PORT_OFFSET: want 0 to 9999" >&2; exit 2; }
if ((PORT_OFFSET != 0)); then
  [[ ${DEV_NODE:-auto} == require ]] && { echo "DEV_PORT_OFFSET=$PORT_OFFSET: a second cluster has no node" >&2; exit 2; }
  DEV_NODE=0
fi
# etcd's client and peer ports live in ranges of their own (23790-33789 and
# 33790-43789), so clusters at offsets 10 apart do not meet on a port.
ETCD_PORT=$((23790 + PORT_OFFSET))
ETCD_PEER_PORT=$((33790 + PORT_OFFSET))
APISERVER_PORT=$((6443 + PORT_OFFSET))
KCM_PORT=$((10257 + PORT_OFFSET))
WEBHOOK_PORT=$((9443 + PORT_OFFSET))
# bench/emptywebhook, the admit-everything floor of make bench-registration,
# authenticated like the manager's webhook.
EMPTY_WEBHOOK_PORT=$((WEBHOOK_PORT + 7))
METRICS_PORT=$((8443 + PORT_OFFSET))
PROBE_PORT=$((8081 + PORT_OFFSET))
SERVICE_CIDR=10.96.0.0/16

# shellcheck source=hack/lib/common.sh
source "$ROOT/hack/lib/common.sh"
# shellcheck source=hack/lib/node.sh
source "$ROOT/hack/lib/node.sh"
# The dev cluster's parts (hack/lib/dev/) and one file per subcommand
# (hack/dev/<subcommand>.sh): functions only, nothing runs until main.
# shellcheck source=hack/lib/dev/tools.sh
source "$ROOT/hack/lib/dev/tools.sh"
# shellcheck source=hack/lib/dev/pki.sh
source "$ROOT/hack/lib/dev/pki.sh"
# shellcheck source=hack/lib/dev/controlplane.sh
source "$ROOT/hack/lib/dev/controlplane.sh"
# shellcheck source=hack/lib/dev/manager.sh
source "$ROOT/hack/lib/dev/manager.sh"
# shellcheck source=hack/lib/dev/agent.sh
source "$ROOT/hack/lib/dev/agent.sh"
# shellcheck source=hack/lib/dev/lifecycle.sh
source "$ROOT/hack/lib/dev/lifecycle.sh"
# shellcheck source=hack/dev/up.sh
source "$ROOT/hack/dev/up.sh"
# shellcheck source=hack/dev/down.sh
source "$ROOT/hack/dev/down.sh"
# shellcheck source=hack/dev/run.sh
source "$ROOT/hack/dev/run.sh"
# shellcheck source=hack/dev/status.sh
source "$ROOT/hack/dev/status.sh"
# shellcheck source=hack/dev/restart.sh
source "$ROOT/hack/dev/restart.sh"
# shellcheck source=hack/dev/stop.sh
source "$ROOT/hack/dev/stop.sh"

main() {
  local cmd=${1:-}
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    run) cmd_run ;;
    status) cmd_status ;;
    restart) cmd_restart "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    *)
      echo "usage: hack/dev.sh up|down|run|status|restart NAME|stop managers" >&2
      exit 2
      ;;
  esac
}

main "$@"
