//go:build node

package netpol

import (
	"testing"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestAdminNetworkPolicy: under networkPolicy: Admin a ClusterLoopbackService
// also keeps an AdminNetworkPolicy that denies the protected ports ahead
// of namespace NetworkPolicies, so a namespace allow-all does not open
// them. The enforcer evaluates AdminNetworkPolicy (kube-network-policies,
// enabled once the CRDs are served); the model does not, so the test
// states what the Deny adds: protected ports of the guarded servers
// closed, whatever the NetworkPolicies say.
func TestAdminNetworkPolicy(t *testing.T) {
	t.Parallel()
	if r := devcluster.Kubectl(t, "", "get", "crd", "adminnetworkpolicies.policy.networking.k8s.io"); r.Err != nil {
		t.Fatalf("the AdminNetworkPolicy CRD is not installed (hack/dev.sh up installs it): %s", r)
	}
	w := newWorld(t, "admin")
	srvA, srvB := podRef{w.a, "srv"}, podRef{w.b, "srv"}
	name := "netpol-" + w.run
	apply(t, networkPolicy(w.a, "allow-all", `{"podSelector": {}, "ingress": [{}]}`))
	w.expectTable("namespace a's allow-all alone", w.intent())

	apply(t, clbs(w, name, "Admin"))
	devcluster.Eventually(t, settleBound, func() string {
		if r := devcluster.Kubectl(t, "", "get", "adminnetworkpolicy", "loopguard-"+name); r.Err != nil {
			return "AdminNetworkPolicy loopguard-" + name + " not there: " + r.String()
		}
		return ""
	})
	waitNetworkPolicy(t, w.a, "loopguard-cluster-"+name)
	if c, ok := effective(t, "clusterloopbackservice", "", name); ok {
		t.Logf("NetworkPolicyEffective=%s (%s): %s", c.Status, c.Reason, c.Message)
	}
	guarded := map[podRef]bool{srvA: true, srvB: true}
	want := w.expected(func(c cell, open bool) bool {
		if guarded[c.To] && protected(c.Port) {
			return false // the AdminNetworkPolicy's Deny
		}
		return open
	})
	w.sameTable("Admin with a namespace allow-all", want, w.intent(srvA, srvB))
	w.expectTable("Admin with a namespace allow-all", want)
}
