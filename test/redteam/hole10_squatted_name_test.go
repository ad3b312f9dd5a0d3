//go:build e2e

package redteam

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole10SquattedNameStopsClusterPolicy: a tenant creates, before the
// admin's ClusterLoopbackService exists, a NetworkPolicy with the name
// loopguard will want in its namespace (loopguard-cluster-<name>): one
// controlled by an object of its own, one with no owner at all. Neither
// may stop the policy in the other namespaces it selects, neither may be
// taken over, and the policy's status must name the namespaces where it
// could not write its NetworkPolicy.
func TestHole10SquattedNameStopsClusterPolicy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owner bool // a controller owner reference to the tenant's ConfigMap
	}{
		{"owned by the tenant's object", true},
		{"without an owner", false},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			sel := fmt.Sprintf("redteam-hole10=%d", time.Now().UnixNano()%1_000_000_000)
			tn := newTenant(t, sel)
			other := devcluster.Namespace(t, "redteam", sel)
			policy := "hole10-" + strings.Split(sel, "=")[1]
			npName := "loopguard-cluster-" + policy

			// The squat: an allow-all NetworkPolicy under loopguard's name.
			ownerRef := ""
			if tc.owner {
				tn.Must(t, "", "create", "configmap", "mine")
				uid := strings.TrimSpace(tn.Must(t, "", "get", "configmap", "mine", "-o", "jsonpath={.metadata.uid}").Stdout)
				ownerRef = fmt.Sprintf(`
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: mine
    uid: %s
    controller: true`, uid)
			}
			tn.Must(t, fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: %s%s
spec:
  podSelector: {}
  ingress:
  - {}
`, npName, ownerRef), "apply", "-f", "-")

			// In both namespaces, an existing pod that exposes the port:
			// the audit must find both.
			for _, ns := range []string{tn.NS, other} {
				admin(t, "", "-n", ns, "run", "exposed", "--image=registry.invalid/x", "--port=8126", "--labels=app=agent")
			}
			admin(t, fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: ClusterLoopbackService
metadata:
  name: %s
spec:
  namespaceSelector:
    matchLabels: {%s: "%s"}
  podSelector:
    matchLabels: {app: agent}
  ports:
  - port: 8126
  enforcementAction: Audit
`, policy, strings.Split(sel, "=")[0], strings.Split(sel, "=")[1]), "apply", "-f", "-")
			t.Cleanup(func() { tryAdmin(t, "", "delete", "clusterloopbackservice", policy, "--wait=false") })

			// The other namespace is enforced: its managed NetworkPolicy.
			devcluster.Eventually(t, time.Minute, func() string {
				r := tryAdmin(t, "", "-n", other, "get", "networkpolicy", npName, "-o", "jsonpath={.metadata.ownerReferences[0].kind}")
				if strings.TrimSpace(r.Stdout) != "ClusterLoopbackService" {
					return "no managed NetworkPolicy in " + other + ": " + r.String()
				}
				return ""
			})

			// The status: both namespaces audited, the squatted one named.
			var last string
			devcluster.Eventually(t, time.Minute, func() string {
				r := tryAdmin(t, "", "get", "clusterloopbackservice", policy, "-o", "json")
				var clbs v1alpha1.ClusterLoopbackService
				if err := json.Unmarshal([]byte(r.Stdout), &clbs); err != nil {
					return r.String()
				}
				conds, _ := json.Marshal(clbs.Status.Conditions)
				last = string(conds)
				audited := map[string]bool{}
				for _, v := range clbs.Status.Violations {
					audited[v.Namespace] = true
				}
				if !audited[tn.NS] || !audited[other] {
					return fmt.Sprintf("violations not found in both namespaces %s and %s: %+v; conditions %+v", tn.NS, other, clbs.Status.Violations, clbs.Status.Conditions)
				}
				np := meta.FindStatusCondition(clbs.Status.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
				if np == nil || np.Status != "False" || np.Reason != "NetworkPolicyNameTaken" || !strings.Contains(np.Message, tn.NS) {
					return fmt.Sprintf("NetworkPolicyEffective does not name the squatted namespace %s: %+v", tn.NS, np)
				}
				ready := meta.FindStatusCondition(clbs.Status.Conditions, v1alpha1.ConditionReady)
				if ready == nil || ready.Status != "False" || !strings.Contains(ready.Message, tn.NS) {
					return fmt.Sprintf("Ready does not report the partial failure in %s: %+v", tn.NS, ready)
				}
				for _, n := range clbs.Status.NetworkPolicies {
					if strings.HasPrefix(n, tn.NS+"/") {
						return "status lists a managed NetworkPolicy in the squatted namespace: " + n
					}
				}
				return ""
			})
			t.Logf("status.conditions: %s", last)

			// The tenant's object is neither taken over nor rewritten.
			r := admin(t, "", "-n", tn.NS, "get", "networkpolicy", npName, "-o", "json")
			var np networkingv1.NetworkPolicy
			if err := json.Unmarshal([]byte(r.Stdout), &np); err != nil {
				t.Fatal(err)
			}
			if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 0 {
				t.Errorf("the tenant's NetworkPolicy was rewritten: %+v", np.Spec)
			}
			for _, o := range np.OwnerReferences {
				if o.Kind == "ClusterLoopbackService" {
					t.Errorf("loopguard adopted the tenant's NetworkPolicy: %+v", np.OwnerReferences)
				}
			}

			// An Event on the policy names it.
			devcluster.Eventually(t, time.Minute, func() string {
				r := tryAdmin(t, "", "get", "events", "-A", "--field-selector", "involvedObject.name="+policy+",reason=NetworkPolicyNameTaken", "-o", "jsonpath={.items[*].message}")
				if !strings.Contains(r.Stdout, tn.NS+"/"+npName) {
					return "no NetworkPolicyNameTaken Event naming " + tn.NS + "/" + npName + ": " + r.String()
				}
				return ""
			})
		})
	}
}
