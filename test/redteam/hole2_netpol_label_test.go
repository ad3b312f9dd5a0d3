//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole2ManagedByLabelHidesAllowAll: conflict detection skipped every
// NetworkPolicy labelled app.kubernetes.io/managed-by=loopguard, a label
// anyone with edit can write. The tenant's allow-all NetworkPolicies, one
// with the label and one with a forged controller ownerReference to the
// policy as well, must be reported: NetworkPolicyEffective=False naming
// them, a ConflictingNetworkPolicy Event, and `loopguard audit`.
func TestHole2ManagedByLabelHidesAllowAll(t *testing.T) {
	tn := newTenant(t)
	tn.Must(t, podManifest("cart-0", `{"app": "cart"}`), "apply", "-f", "-")
	tn.Must(t, lbsManifest("guard", `{"matchLabels": {"app": "cart"}}`, `[{"port": 15000}]`), "apply", "-f", "-")
	waitEnforced(t, tn.NS, "loopbackservice", "guard")
	waitCondition(t, tn.NS, "loopbackservice", "guard", metav1.ConditionTrue)

	tn.Must(t, `{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": "allow-all", "labels": {"app.kubernetes.io/managed-by": "loopguard", "loopguard.io/policy": "guard"}},
 "spec": {"podSelector": {}, "ingress": [{}]}}`, "apply", "-f", "-")
	c := waitCondition(t, tn.NS, "loopbackservice", "guard", metav1.ConditionFalse, "allow-all")
	t.Logf("label: NetworkPolicyEffective=%s (%s): %s", c.Status, c.Reason, c.Message)

	uid := strings.TrimSpace(tn.Must(t, "", "get", "loopbackservice", "guard", "-o", "jsonpath={.metadata.uid}").Stdout)
	tn.Must(t, fmt.Sprintf(`{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": "forged-owner", "labels": {"app.kubernetes.io/managed-by": "loopguard"},
  "ownerReferences": [{"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService", "name": "guard", "uid": %q, "controller": true}]},
 "spec": {"podSelector": {"matchLabels": {"app": "cart"}}, "ingress": [{"ports": [{"port": 15000}]}]}}`, uid), "apply", "-f", "-")
	c = waitCondition(t, tn.NS, "loopbackservice", "guard", metav1.ConditionFalse, "allow-all", "forged-owner")
	t.Logf("label and forged owner: NetworkPolicyEffective=%s (%s): %s", c.Status, c.Reason, c.Message)

	devcluster.Eventually(t, time.Minute, func() string {
		r := tryAdmin(t, "", "get", "events.events.k8s.io", "-n", tn.NS, "--field-selector", "reason=ConflictingNetworkPolicy", "-o", "jsonpath={range .items[*]}{.note}{\"\\n\"}{end}")
		if !strings.Contains(r.Stdout, "allow-all") {
			return "no ConflictingNetworkPolicy Event naming allow-all: " + r.String()
		}
		return ""
	})
	got := strings.Join(auditConflicts(t, tn.NS), "\n")
	for _, n := range []string{"allow-all 15000/TCP", "forged-owner 15000/TCP"} {
		if !strings.Contains(got, n) {
			t.Fatalf("loopguard audit does not report %s; its conflicts:\n%s", n, got)
		}
	}
	t.Logf("loopguard audit conflicts:\n%s", got)
	// loopguard's own NetworkPolicy is judged too, and is no conflict.
	if strings.Contains(got, "loopguard-guard") {
		t.Fatalf("loopguard audit reports loopguard's own NetworkPolicy as a conflict:\n%s", got)
	}
}
