//go:build e2e

package redteam

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole15UnrepairedNetworkPolicy: a managed NetworkPolicy is kept by
// its owner; a LoopbackService the tenant deletes while a finalizer of its
// own holds it keeps nothing. The tenant then edits that NetworkPolicy,
// which its namespace's `edit` role may, to select the pods the platform's
// cluster policy protects and admit every port. No webhook judges
// NetworkPolicies: the cluster policy must record it
// (NetworkPolicyEffective False, naming it). Its change reached only the
// policies whose pods may be its owner's, none here, until 3d23baf.
func TestHole15UnrepairedNetworkPolicy(t *testing.T) {
	tn := newTenant(t)
	tn.Must(t, podManifest("cart-0", `{"app": "cart"}`), "apply", "-f", "-")
	name := "redteam-hole15-" + tn.NS
	admin(t, fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "ClusterLoopbackService",
 "metadata": {"name": %q},
 "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": %q}}, "podSelector": {"matchLabels": {"app": "cart"}},
  "ports": [{"port": 15000}], "enforcementAction": "Audit"}}`, name, tn.NS), "apply", "-f", "-")
	t.Cleanup(func() { tryAdmin(t, "", "delete", "clusterloopbackservice", name, "--ignore-not-found") })
	waitEnforced(t, "", "clusterloopbackservice", name)
	waitCondition(t, "", "clusterloopbackservice", name, metav1.ConditionTrue)

	tn.Must(t, `{"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
 "metadata": {"name": "decoy", "finalizers": ["example.com/hold"]},
 "spec": {"podSelector": {"matchLabels": {"app": "nothing"}}, "ports": [{"port": 1}], "enforcementAction": "Audit"}}`, "apply", "-f", "-")
	t.Cleanup(func() {
		tryAdmin(t, "", "-n", tn.NS, "patch", "loopbackservice", "decoy", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
	})
	devcluster.Eventually(t, time.Minute, func() string {
		if r := tn.Kubectl(t, "", "get", "networkpolicy", "loopguard-decoy"); r.Err != nil {
			return "no NetworkPolicy loopguard-decoy yet: " + r.String()
		}
		return ""
	})
	tn.DeleteHeld(t, "loopbackservice", "decoy")
	tn.Must(t, "", "patch", "networkpolicy", "loopguard-decoy", "--type=merge", "-p",
		`{"spec": {"podSelector": {"matchLabels": {"app": "cart"}}, "ingress": [{}]}}`)
	waitCondition(t, "", "clusterloopbackservice", name, metav1.ConditionFalse, "loopguard-decoy")
}
