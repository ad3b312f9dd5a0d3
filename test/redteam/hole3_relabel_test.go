//go:build e2e

package redteam

import (
	"strings"
	"testing"
)

// TestHole3RelabelOut: a tenant cannot take a pod out of a Deny policy by
// relabelling it (after which port-forward, the NetworkPolicy and the node
// agent would all stop covering it); the refusal says to recreate the pod.
// A relabel that keeps the pod selected passes, and so does one by a
// subject the policy's spec.portForward.allowed lets through.
func TestHole3RelabelOut(t *testing.T) {
	tn := newTenant(t)
	policy(t, tn.NS, "envoy-admin", 15000, "Deny", "  portForward: {allowed: [{kind: User, name: sre-alice}]}\n")
	tn.Must(t, cartPod("cart-0"), "create", "-f", "-")

	tn.Must(t, "", "label", "pod", "cart-0", "version=2")

	r := tn.Refused(t, "delete and recreate the pod with the new labels", "", "label", "pod", "cart-0", "app=cart-debug", "--overwrite")
	t.Logf("relabel refused: %s", strings.TrimSpace(r.Stderr))
	tn.Refused(t, "LoopbackService "+tn.NS+"/envoy-admin", "", "label", "pod", "cart-0", "app-")
	if got := admin(t, "", "-n", tn.NS, "get", "pod", "cart-0", "-o", "jsonpath={.metadata.labels.app}").Stdout; got != "cart" {
		t.Fatalf("pod label app is %q, want cart", got)
	}

	// The break-glass subject may (recorded as Audit in loopguard's log).
	admin(t, "", "-n", tn.NS, "create", "rolebinding", "sre-edit", "--clusterrole=edit", "--user=sre-alice")
	devclusterEventuallyCan(t, tn.NS, "sre-alice", "update", "pods")
	admin(t, "", "--as=sre-alice", "-n", tn.NS, "label", "pod", "cart-0", "app=cart-debug", "--overwrite")
}
