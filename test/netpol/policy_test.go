//go:build node

package netpol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

// protectedPorts is the ports list of the tests' loopguard policies, and
// protected reports whether a server port falls in it.
const protectedPorts = `[{"port": 9090}, {"port": 9100, "endPort": 9102}, {"port": 5454, "protocol": "UDP"}]`

func protected(p port) bool {
	switch p.Proto {
	case corev1.ProtocolTCP:
		return p.Num == 9090 || (p.Num >= 9100 && p.Num <= 9102)
	case corev1.ProtocolUDP:
		return p.Num == 5454
	}
	return false
}

// lbs is a LoopbackService protecting the server pods' ports. Audit: the
// servers declare the protected port 9090 (for namedPort rules), which
// admission would otherwise reject; the NetworkPolicy is the same.
func lbs(ns, name, mode string) string {
	return fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
 "metadata": {"name": %q, "namespace": %q},
 "spec": {"podSelector": {"matchLabels": {"app": "srv"}}, "enforcementAction": "Audit", "networkPolicy": %q, "ports": %s}}`,
		name, ns, mode, protectedPorts)
}

// clbs is a ClusterLoopbackService protecting the server pods of the
// world's namespaces.
func clbs(w *world, name, mode string) string {
	return fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "ClusterLoopbackService",
 "metadata": {"name": %q},
 "spec": {"namespaceSelector": {"matchLabels": {%q: %q}}, "podSelector": {"matchLabels": {"app": "srv"}},
  "enforcementAction": "Audit", "networkPolicy": %q, "ports": %s}}`,
		name, runLabel, w.run, mode, protectedPorts)
}

// networkPolicy is a NetworkPolicy manifest with the given spec (JSON).
func networkPolicy(ns, name, spec string) string {
	return fmt.Sprintf(`{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": %q, "namespace": %q}, "spec": %s}`, name, ns, spec)
}

// waitNetworkPolicy waits until the NetworkPolicy exists.
func waitNetworkPolicy(t *testing.T, ns, name string) {
	t.Helper()
	devcluster.Eventually(t, settleBound, func() string {
		if r := devcluster.Kubectl(t, "", "get", "networkpolicy", name, "-n", ns); r.Err != nil {
			return "NetworkPolicy " + ns + "/" + name + " not there: " + r.String()
		}
		return ""
	})
}

// effective reads the NetworkPolicyEffective condition of a policy
// (resource "loopbackservice" with ns, or "clusterloopbackservice").
func effective(t *testing.T, resource, ns, name string) (metav1.Condition, bool) {
	t.Helper()
	args := []string{"get", resource, name, "-o", "json"}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	r := devcluster.Kubectl(t, "", args...)
	if r.Err != nil {
		return metav1.Condition{}, false
	}
	var obj struct {
		Metadata struct {
			Generation int64 `json:"generation"`
		} `json:"metadata"`
		Status struct {
			ObservedGeneration int64              `json:"observedGeneration"`
			Conditions         []metav1.Condition `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &obj); err != nil {
		return metav1.Condition{}, false
	}
	if obj.Status.ObservedGeneration != obj.Metadata.Generation {
		return metav1.Condition{}, false
	}
	for _, c := range obj.Status.Conditions {
		if c.Type == "NetworkPolicyEffective" {
			return c, true
		}
	}
	return metav1.Condition{}, false
}

// waitEffective waits until NetworkPolicyEffective has the status and its
// message names every one of names (and, for True, none are needed).
func waitEffective(t *testing.T, resource, ns, name string, status metav1.ConditionStatus, names ...string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	devcluster.Eventually(t, settleBound, func() string {
		c, ok := effective(t, resource, ns, name)
		if !ok {
			return fmt.Sprintf("%s %s/%s: no NetworkPolicyEffective for the current generation", resource, ns, name)
		}
		if c.Status != status {
			return fmt.Sprintf("%s %s/%s: NetworkPolicyEffective=%s (%s: %s), want %s", resource, ns, name, c.Status, c.Reason, c.Message, status)
		}
		for _, n := range names {
			if !strings.Contains(c.Message, n) {
				return fmt.Sprintf("%s %s/%s: NetworkPolicyEffective message %q does not name %s", resource, ns, name, c.Message, n)
			}
		}
		got = c
		return ""
	})
	return got
}

// intent is the truth table a loopguard policy declares: the protected
// ports of the guarded servers are closed to every pod, everything else is
// open (no other policy restricts it).
func (w *world) intent(guarded ...podRef) table {
	g := map[podRef]bool{}
	for _, p := range guarded {
		g[p] = true
	}
	tb := table{}
	for _, c := range w.cells() {
		tb[c] = !(g[c.To] && protected(c.Port))
	}
	return tb
}

// sameTable fails the test when the model's table is not the declared
// intent: the generated NetworkPolicy does not mean what loopguard says.
func (w *world) sameTable(name string, model, intent table) {
	w.t.Helper()
	if diff := diffTables(intent, model); len(diff) > 0 {
		w.t.Fatalf("%s: the NetworkPolicies (by the model) differ from loopguard's declared intent; left intent, right model\n%s\n%s",
			name, w.sideBySide(intent, model), strings.Join(diff, "\n"))
	}
}
