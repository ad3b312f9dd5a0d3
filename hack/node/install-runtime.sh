#!/usr/bin/env bash
# Installs what the dev node needs beyond the Go-built Kubernetes binaries:
# containerd (+ runc), the reference CNI plugins, and the netfilter tools the
# kubelet, kube-proxy and the CNI portmap plugin call. All from Debian's
# packages — a fresh machine (and CI) has none of them.
#
#   hack/node/install-runtime.sh           install what is missing (root only)
#   hack/node/install-runtime.sh --check   exit 0 if everything is there, else
#                                          list what is missing and exit 1
set -euo pipefail

# nftables is not strictly a runtime dependency but gives 'nft', which
# kube-proxy's nftables mode calls and which 'hack/dev.sh down' uses to
# remove the tables the node left behind.
PACKAGES=(containerd runc containernetworking-plugins iptables ipset conntrack nftables)
CNI_BIN_DIR=/usr/lib/cni
APT_TIMEOUT=${APT_TIMEOUT:-900}

# missing: print one line per missing executable.
missing() {
  local t
  for t in containerd containerd-shim-runc-v2 ctr runc iptables ip6tables iptables-save iptables-restore \
    ipset conntrack nft; do
    command -v "$t" >/dev/null || echo "$t"
  done
  for t in bridge host-local portmap loopback; do
    [[ -x $CNI_BIN_DIR/$t ]] || echo "$CNI_BIN_DIR/$t"
  done
}

main() {
  local gone
  gone=$(missing)
  if [[ ${1:-} == --check ]]; then
    [[ -z $gone ]] && return 0
    echo "missing: $(echo "$gone" | tr '\n' ' ')"
    return 1
  fi
  if [[ -z $gone ]]; then
    echo "  ✓ container runtime and CNI plugins already installed"
    return 0
  fi
  if [[ $(id -u) != 0 ]]; then
    echo "✗ missing $(echo "$gone" | tr '\n' ' ')and not root: run as root, or" \
      "sudo apt-get install -y ${PACKAGES[*]}" >&2
    return 1
  fi
  command -v apt-get >/dev/null || {
    echo "✗ missing $(echo "$gone" | tr '\n' ' ')and no apt-get to install ${PACKAGES[*]} with" >&2
    return 1
  }
  echo "  … installing ${PACKAGES[*]} (missing: $(echo "$gone" | tr '\n' ' '))"
  # Bounded: a mirror that hangs must fail the step, not the whole session.
  # No recommends: containerd's would pull in extras the node never uses.
  DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" apt-get update -q ||
    { echo "✗ apt-get update failed or timed out (${APT_TIMEOUT}s)" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" ||
    { echo "✗ apt-get install ${PACKAGES[*]} failed or timed out (${APT_TIMEOUT}s)" >&2; return 1; }
  gone=$(missing)
  if [[ -n $gone ]]; then
    echo "✗ still missing after the install: $(echo "$gone" | tr '\n' ' ')" >&2
    return 1
  fi
  echo "  ✓ installed ${PACKAGES[*]}"
}

main "$@"
