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

// lbsManifest is a LoopbackService with a podSelector and ports (JSON).
func lbsManifest(name, selector, ports string) string {
	return fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
 "metadata": {"name": %q},
 "spec": {"podSelector": %s, "ports": %s, "enforcementAction": "Audit"}}`, name, selector, ports)
}

// podManifest is a pod with labels that never needs to run: the union of
// NetworkPolicies is judged on its labels.
func podManifest(name, labels string) string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": %q, "labels": %s},
 "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}`, name, labels)
}

// TestHole1SelfCancellingNetworkPolicies: loopguard's managed
// NetworkPolicies are a union; each admitted every port but its own
// policy's, so a pod two policies select was open on every port. The
// tenant writes the two cases (config/samples' envoy-admin and
// cart-redis, and its own {podSelector: {}, ports: [1]}) and judges
// loopguard's NetworkPolicies with the conflict evaluation of
// internal/netpol: none may admit a port a policy protects on a pod both
// select, and every policy must say NetworkPolicyEffective=True once
// they are current (and only then).
func TestHole1SelfCancellingNetworkPolicies(t *testing.T) {
	tn := newTenant(t)
	tn.Must(t, podManifest("cart-0", `{"app": "cart"}`), "apply", "-f", "-")
	tn.Must(t, podManifest("web-0", `{"app": "web"}`), "apply", "-f", "-")
	// config/samples: envoy-admin (every pod, 15000) and cart-redis (app=cart, 6379).
	tn.Must(t, lbsManifest("envoy-admin", `{}`, `[{"port": 15000, "name": "envoy-admin"}]`), "apply", "-f", "-")
	tn.Must(t, lbsManifest("cart-redis", `{"matchLabels": {"app": "cart"}}`, `[{"port": 6379, "name": "redis"}]`), "apply", "-f", "-")
	// The tenant's on purpose: loopguard itself would write "admit 2-65535 to every pod".
	tn.Must(t, lbsManifest("port-1", `{}`, `[{"port": 1}]`), "apply", "-f", "-")
	for _, n := range []string{"envoy-admin", "cart-redis", "port-1"} {
		waitEnforced(t, tn.NS, "loopbackservice", n)
	}

	devcluster.Eventually(t, time.Minute, func() string {
		if open := openProtectedPorts(t, tn.NS); len(open) > 0 {
			return "loopguard's NetworkPolicies re-open protected ports:\n  " + strings.Join(open, "\n  ")
		}
		return ""
	})
	for _, n := range []string{"envoy-admin", "cart-redis", "port-1"} {
		c := waitCondition(t, tn.NS, "loopbackservice", n, metav1.ConditionTrue)
		t.Logf("%s: NetworkPolicyEffective=%s: %s", n, c.Status, c.Message)
	}

	// A spec change is carried to the overlapping policies' NetworkPolicies:
	// cart-redis now also protects 9090, which envoy-admin's and port-1's
	// NetworkPolicies (every pod, so cart-0 too) must stop admitting.
	tn.Must(t, "", "patch", "loopbackservice", "cart-redis", "--type=merge", "-p", `{"spec": {"ports": [{"port": 6379}, {"port": 9090}]}}`)
	devcluster.Eventually(t, time.Minute, func() string {
		if open := openProtectedPorts(t, tn.NS); len(open) > 0 {
			return "after protecting 9090: " + strings.Join(open, "; ")
		}
		r := tryAdmin(t, "", "get", "networkpolicy", "loopguard-envoy-admin", "-n", tn.NS, "-o", "jsonpath={.spec.ingress[0].ports[*].port}")
		if !strings.Contains(r.Stdout, "9091") {
			return "loopguard-envoy-admin does not close 9090 yet: " + r.Stdout
		}
		return ""
	})
	// Deleting the tenant's policy re-opens port 1 in the others'.
	tn.Must(t, "", "delete", "loopbackservice", "port-1")
	devcluster.Eventually(t, time.Minute, func() string {
		r := tryAdmin(t, "", "get", "networkpolicy", "loopguard-envoy-admin", "-n", tn.NS, "-o", "jsonpath={.spec.ingress[0].ports[0].port}")
		if strings.TrimSpace(r.Stdout) != "1" {
			return "loopguard-envoy-admin still closes port 1: first admitted port " + r.Stdout
		}
		return ""
	})
}

// TestHole1ClusterAndNamespacePolicies: a ClusterLoopbackService selecting
// the tenant's namespace and the tenant's own policies overlap: neither
// kind's NetworkPolicy may re-open the other's ports, and a namespace
// label change that brings the cluster policy in updates the tenant's.
func TestHole1ClusterAndNamespacePolicies(t *testing.T) {
	tn := newTenant(t)
	tn.Must(t, podManifest("cart-0", `{"app": "cart"}`), "apply", "-f", "-")
	tn.Must(t, lbsManifest("port-1", `{}`, `[{"port": 1}]`), "apply", "-f", "-")
	waitEnforced(t, tn.NS, "loopbackservice", "port-1")
	name := "redteam-hole1-" + tn.NS
	clbs := fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "ClusterLoopbackService",
 "metadata": {"name": %q},
 "spec": {"namespaceSelector": {"matchLabels": {"redteam-hole1": %q}}, "podSelector": {"matchLabels": {"app": "cart"}},
  "ports": [{"port": 15000}], "enforcementAction": "Audit"}}`, name, tn.NS)
	admin(t, clbs, "apply", "-f", "-")
	t.Cleanup(func() { tryAdmin(t, "", "delete", "clusterloopbackservice", name, "--ignore-not-found") })
	// The namespace is labelled after both policies exist: the label change
	// alone must bring 15000 into port-1's NetworkPolicy.
	admin(t, "", "label", "namespace", tn.NS, "redteam-hole1="+tn.NS)
	waitEnforced(t, "", "clusterloopbackservice", name)
	devcluster.Eventually(t, time.Minute, func() string {
		if r := tryAdmin(t, "", "get", "networkpolicy", "loopguard-cluster-"+name, "-n", tn.NS); r.Err != nil {
			return "no cluster NetworkPolicy yet"
		}
		if open := openProtectedPorts(t, tn.NS); len(open) > 0 {
			return "loopguard's NetworkPolicies re-open protected ports:\n  " + strings.Join(open, "\n  ")
		}
		return ""
	})
	waitCondition(t, tn.NS, "loopbackservice", "port-1", metav1.ConditionTrue)
	waitCondition(t, "", "clusterloopbackservice", name, metav1.ConditionTrue)
}
