//go:build node

package netpol

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestConflictsAgreeWithTraffic: for each shape of NetworkPolicy beside
// the managed one, loopguard's conflict detector (NetworkPolicyEffective
// of the LoopbackService) must say "conflict" exactly when some pod can
// open a new connection to a protected port of the guarded server.
func TestConflictsAgreeWithTraffic(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, "conflicts")
	srvA := podRef{w.a, "srv"}
	w.focus = &srvA // the shapes change a's policies only
	t.Cleanup(func() { t.Logf("TestConflictsAgreeWithTraffic took %s", time.Since(start).Round(time.Second)) })
	apply(t, lbs(w.a, "guard", "Managed"))
	waitNetworkPolicy(t, w.a, "loopguard-guard")
	waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionTrue)

	const roleB = `{"namespaceSelector": {"matchLabels": {"netpol-test.loopguard.io/role": "b"}}}`
	srv := `{"matchLabels": {"app": "srv"}}`
	shapes := []struct {
		name     string
		spec     string
		conflict bool
		// relabel, when set, labels a/cli afterwards: a peer that matches
		// no pod yet is a hole one label away, and the detector says so.
		relabel string
	}{
		{"rule-without-ports", `{"podSelector": ` + srv + `, "ingress": [{}]}`, true, ""},
		{"rule-without-ports-own-ns", `{"podSelector": ` + srv + `, "ingress": [{"from": [{"podSelector": {}}]}]}`, true, ""},
		{"range-covering", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"port": 9000, "endPort": 9200}]}]}`, true, ""},
		{"range-touching-end", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"port": 9102, "endPort": 9103}]}]}`, true, ""},
		{"range-in-gap", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"port": 9091, "endPort": 9099}]}]}`, false, ""},
		{"udp-all-ports", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"protocol": "UDP"}]}]}`, true, ""},
		{"named-port-protected", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"port": "admin"}]}]}`, true, ""},
		{"named-port-open", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"port": "web"}]}]}`, false, ""},
		{"named-port-protocol-mismatch", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"protocol": "UDP", "port": "admin"}]}]}`, false, ""},
		{"protocol-mismatch-udp-9090", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"protocol": "UDP", "port": 9090}]}]}`, false, ""},
		{"protocol-mismatch-tcp-5454", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"protocol": "TCP", "port": 5454}]}]}`, false, ""},
		{"ipblock-pod-range", `{"podSelector": ` + srv + `, "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/24"}}]}]}`, true, ""},
		{"ipblock-one-client", fmt.Sprintf(`{"podSelector": %s, "ingress": [{"from": [{"ipBlock": {"cidr": "%s/32"}}], "ports": [{"port": 9090}]}]}`, srv, w.ips[podRef{w.b, "cli"}]), true, ""},
		{"namespace-selector", `{"podSelector": ` + srv + `, "ingress": [{"from": [` + roleB + `]}]}`, true, ""},
		{"namespace-and-pod-selector", `{"podSelector": ` + srv + `, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"netpol-test.loopguard.io/role": "b"}}, "podSelector": {"matchLabels": {"app": "cli"}}}], "ports": [{"port": 9090}]}]}`, true, ""},
		{"peer-matching-no-pod-yet", `{"podSelector": ` + srv + `, "ingress": [{"from": [{"podSelector": {"matchLabels": {"netpol-test.loopguard.io/peer": "yes"}}}], "ports": [{"port": 9090}]}]}`, true, "netpol-test.loopguard.io/peer=yes"},
		{"udp-range-covering", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"protocol": "UDP", "port": 5400, "endPort": 5500}]}]}`, true, ""},
		{"second-rule-admits", `{"podSelector": ` + srv + `, "ingress": [{"ports": [{"port": 8080}]}, {"ports": [{"port": 9101}]}]}`, true, ""},
		{"selector-by-expression", `{"podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["cli"]}]}, "ingress": [{}]}`, true, ""},
		{"ingress-type-without-rules", `{"podSelector": ` + srv + `, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}`, false, ""},
		{"selects-other-pods", `{"podSelector": {"matchLabels": {"app": "cli"}}, "ingress": [{}]}`, false, ""},
		{"egress-only", `{"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}`, false, ""},
	}
	var rows []string
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			w.t = t
			name := "shape-" + s.name
			apply(t, networkPolicy(w.a, name, s.spec))
			want := w.expected(nil)
			w.expectTable(s.name, want)
			traffic := opensProtected(want, srvA)
			if s.relabel != "" {
				if traffic {
					t.Fatalf("%s: a peer that matches no pod yet already lets traffic in", s.name)
				}
				devcluster.MustKubectl(t, "", "label", "pod", "cli", "-n", w.a, s.relabel)
				t.Cleanup(func() {
					devcluster.Kubectl(t, "", "label", "pod", "cli", "-n", w.a, strings.Split(s.relabel, "=")[0]+"-")
				})
				want = w.expected(nil)
				w.expectTable(s.name+" after labelling a/cli "+s.relabel, want)
				traffic = opensProtected(want, srvA)
			}
			// The detector acts on watch events: give it the same bound.
			var detector bool
			var cond metav1.Condition
			devcluster.Eventually(t, 20*time.Second, func() string {
				c, ok := effective(t, "loopbackservice", w.a, "guard")
				if !ok {
					return "no NetworkPolicyEffective condition"
				}
				cond = c
				detector = c.Status == metav1.ConditionFalse && c.Reason == "ConflictingNetworkPolicies" && strings.Contains(c.Message, name)
				if detector != traffic {
					return fmt.Sprintf("detector says conflict=%t (%s %s: %s), traffic says a protected port opens=%t", detector, c.Status, c.Reason, c.Message, traffic)
				}
				return ""
			})
			if traffic != s.conflict {
				t.Fatalf("%s: traffic says a protected port opens=%t, the case expects %t", s.name, traffic, s.conflict)
			}
			rows = append(rows, fmt.Sprintf("  %-30s detector=%-5t traffic=%-5t (%s)", s.name, detector, traffic, cond.Reason))
			// Deleted now, not at the end: the next shape starts from the
			// managed policy alone.
			devcluster.MustKubectl(t, "", "delete", "networkpolicy", name, "-n", w.a, "--wait=true")
		})
	}
	t.Logf("detector vs traffic:\n%s", strings.Join(rows, "\n"))
}

// opensProtected reports whether tb has a protected port of server open.
func opensProtected(tb table, server podRef) bool {
	for c, open := range tb {
		if open && c.To == server && protected(c.Port) {
			return true
		}
	}
	return false
}
