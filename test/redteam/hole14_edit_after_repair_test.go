//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole14EditRightAfterRepair: the policy reconcilers drop the watch
// events of their own writes, by the resourceVersion each write returned.
// The tenant edits loopguard's managed NetworkPolicy in its namespace, its
// own policy's and a cluster policy's, to admit every port, again and
// again as soon as loopguard has repaired it: each edit must be repaired
// (within the minute; the audit interval is an hour) and none may leave a
// protected port open.
func TestHole14EditRightAfterRepair(t *testing.T) {
	tn := newTenant(t)
	tn.Must(t, podManifest("cart-0", `{"app": "cart"}`), "apply", "-f", "-")
	tn.Must(t, lbsManifest("guard", `{"matchLabels": {"app": "cart"}}`, `[{"port": 6379}]`), "apply", "-f", "-")
	name := "redteam-hole14-" + tn.NS
	admin(t, fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "ClusterLoopbackService",
 "metadata": {"name": %q},
 "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": %q}}, "podSelector": {"matchLabels": {"app": "cart"}},
  "ports": [{"port": 15000}], "enforcementAction": "Audit"}}`, name, tn.NS), "apply", "-f", "-")
	t.Cleanup(func() { tryAdmin(t, "", "delete", "clusterloopbackservice", name, "--ignore-not-found") })
	waitEnforced(t, tn.NS, "loopbackservice", "guard")
	waitEnforced(t, "", "clusterloopbackservice", name)

	nps := []string{"loopguard-guard", "loopguard-cluster-" + name}
	closed := func(np string) string {
		r := tryAdmin(t, "", "get", "networkpolicy", np, "-n", tn.NS, "-o", "jsonpath={.spec.ingress[*].ports[*].port}")
		if r.Err != nil {
			return np + ": " + r.String()
		}
		if strings.TrimSpace(r.Stdout) == "" {
			return np + " admits every port"
		}
		if open := openProtectedPorts(t, tn.NS); len(open) > 0 {
			return "protected ports open: " + strings.Join(open, "; ")
		}
		return ""
	}
	for _, np := range nps {
		devcluster.Eventually(t, time.Minute, func() string { return closed(np) })
	}
	for round := range 3 {
		for _, np := range nps {
			tn.Must(t, "", "patch", "networkpolicy", np, "--type=merge", "-p", `{"spec": {"ingress": [{}]}}`)
			devcluster.Eventually(t, time.Minute, func() string {
				if msg := closed(np); msg != "" {
					return fmt.Sprintf("round %d: %s", round, msg)
				}
				return ""
			})
		}
	}
}
