package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// chainName is the enforcer's iptables chain; hack/lib/node.sh removes
// chains with this prefix on `down`, and reports any left over.
const chainName = "LGNP-ENFORCER"

// hook is the iptables side of the enforcer: FORWARD jumps to chainName,
// which hands the first packet of every TCP, UDP and SCTP flow from or to
// the pod range to the NFQUEUE the evaluator reads.
type hook struct {
	queue   int
	podCIDR string
	bypass  bool
}

// rules is the chain's content, in iptables-restore syntax. Replies and
// later packets of an accepted flow are not queued: the verdict of its
// first packet stands, as in the library's own nftables hook.
func (h hook) rules() string {
	target := fmt.Sprintf("-j NFQUEUE --queue-num %d", h.queue)
	if h.bypass {
		target += " --queue-bypass"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n-F %s\n", chainName, chainName)
	fmt.Fprintf(&b, "-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n", chainName)
	for _, proto := range []string{"tcp", "udp", "sctp"} {
		fmt.Fprintf(&b, "-A %s -p %s -s %s %s\n", chainName, proto, h.podCIDR, target)
		fmt.Fprintf(&b, "-A %s -p %s -d %s %s\n", chainName, proto, h.podCIDR, target)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// install writes the chain (replacing an older one) and puts the jump
// first in FORWARD, once.
func (h hook) install() error {
	if out, err := iptablesRestore(h.rules()); err != nil {
		return fmt.Errorf("failed to write chain %s: %w: %s", chainName, err, out)
	}
	if _, err := iptables("-C", "FORWARD", "-j", chainName); err == nil {
		return nil
	}
	if out, err := iptables("-I", "FORWARD", "1", "-j", chainName); err != nil {
		return fmt.Errorf("failed to add the FORWARD jump to %s: %w: %s", chainName, err, out)
	}
	return nil
}

// remove deletes every FORWARD jump to the chain, then the chain.
func (h hook) remove() error {
	for {
		if _, err := iptables("-C", "FORWARD", "-j", chainName); err != nil {
			break
		}
		if out, err := iptables("-D", "FORWARD", "-j", chainName); err != nil {
			return fmt.Errorf("failed to delete the FORWARD jump to %s: %w: %s", chainName, err, out)
		}
	}
	if _, err := iptables("-L", chainName, "-n"); err != nil {
		return nil // no chain
	}
	if out, err := iptables("-F", chainName); err != nil {
		return fmt.Errorf("failed to flush chain %s: %w: %s", chainName, err, out)
	}
	if out, err := iptables("-X", chainName); err != nil {
		return fmt.Errorf("failed to delete chain %s: %w: %s", chainName, err, out)
	}
	return nil
}

// iptables runs iptables on the filter table, waiting for the xtables lock
// the kubelet also takes.
func iptables(args ...string) (string, error) {
	out, err := exec.Command("iptables", append([]string{"-w", "5", "-t", "filter"}, args...)...).CombinedOutput()
	return string(out), err
}

func iptablesRestore(script string) (string, error) {
	cmd := exec.Command("iptables-restore", "-w", "5", "--noflush")
	cmd.Stdin = bytes.NewBufferString(script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
