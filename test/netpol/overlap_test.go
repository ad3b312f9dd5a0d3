//go:build node

package netpol

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// overlapPolicy is a loopguard policy of the overlap tests: a
// LoopbackService in ns, or a ClusterLoopbackService of the world when ns
// is "".
type overlapPolicy struct {
	ns, name string
	selector string // a podSelector (JSON)
	ports    string // spec.ports (JSON)
	closes   func(port) bool
}

func (p overlapPolicy) manifest(w *world) string {
	if p.ns == "" {
		return fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "ClusterLoopbackService",
 "metadata": {"name": %q},
 "spec": {"namespaceSelector": {"matchLabels": {%q: %q}}, "podSelector": %s,
  "enforcementAction": "Audit", "networkPolicy": "Managed", "ports": %s}}`, p.name, runLabel, w.run, p.selector, p.ports)
	}
	return fmt.Sprintf(`{"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
 "metadata": {"name": %q, "namespace": %q},
 "spec": {"podSelector": %s, "enforcementAction": "Audit", "networkPolicy": "Managed", "ports": %s}}`, p.name, p.ns, p.selector, p.ports)
}

// applies reports whether the policy protects the server.
func (p overlapPolicy) applies(w *world, srv podRef) bool {
	if p.ns != "" && p.ns != srv.NS {
		return false
	}
	var sel metav1.LabelSelector
	if err := jsonUnmarshal(p.selector, &sel); err != nil {
		w.t.Fatalf("selector %s: %v", p.selector, err)
	}
	s, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil {
		w.t.Fatalf("selector %s: %v", p.selector, err)
	}
	return s.Matches(labels.Set{"app": "srv"})
}

func tcpIs(nums ...int32) func(port) bool {
	return func(p port) bool {
		for _, n := range nums {
			if p.Proto == "TCP" && p.Num == n {
				return true
			}
		}
		return false
	}
}

func udpIs(n int32) func(port) bool {
	return func(p port) bool { return p.Proto == "UDP" && p.Num == n }
}

// overlapIntent: a server port is closed exactly when a policy selecting
// the server protects it.
func (w *world) overlapIntent(policies []overlapPolicy) table {
	tb := table{}
	for _, c := range w.cells() {
		open := true
		for _, p := range policies {
			if p.applies(w, c.To) && p.closes(c.Port) {
				open = false
			}
		}
		tb[c] = open
	}
	return tb
}

// runOverlap applies the policies, waits until loopguard's NetworkPolicies
// mean the intent (by the model, from the objects in the cluster) and
// every policy says NetworkPolicyEffective=True, then probes.
func (w *world) runOverlap(name string, policies []overlapPolicy) {
	w.t.Helper()
	w.waitNoPolicies()
	for _, p := range policies {
		apply(w.t, p.manifest(w))
	}
	intent := w.overlapIntent(policies)
	start := time.Now()
	for {
		diff := diffTables(intent, w.expected(nil))
		if len(diff) == 0 {
			w.t.Logf("%s: NetworkPolicies mean the intent after %s", name, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > settleBound {
			// Show it in real packets too: expectTable fails with both tables.
			w.t.Errorf("%s: loopguard's NetworkPolicies (by the model) do not mean the intent after %s:\n%s", name, settleBound, strings.Join(diff, "\n"))
			w.expectTable(name, intent)
			return
		}
		time.Sleep(time.Second)
	}
	for _, p := range policies {
		if p.ns == "" {
			waitEffective(w.t, "clusterloopbackservice", "", p.name, metav1.ConditionTrue)
		} else {
			waitEffective(w.t, "loopbackservice", p.ns, p.name, metav1.ConditionTrue)
		}
	}
	w.expectTable(name, intent)
}

// TestOverlappingPolicies: issue #15 hole 1 on the real enforcer. Before,
// each managed NetworkPolicy admitted every port but its own policy's, so
// on a pod two policies select their union admitted every port. Truth
// tables for two, three, and cluster-plus-namespace overlapping policies,
// and the tenant's {podSelector: {}, ports: [1]}: the protected ports of
// every policy selecting a server are closed, the others open.
func TestOverlappingPolicies(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, "overlap")
	t.Cleanup(func() { t.Logf("TestOverlappingPolicies took %s", time.Since(start).Round(time.Second)) })
	everyPod := `{}`
	srv := `{"matchLabels": {"app": "srv"}}`
	cases := []struct {
		name     string
		policies func() []overlapPolicy
	}{
		{"two: every pod 9090, app=srv 9100-9102", func() []overlapPolicy {
			return []overlapPolicy{
				{w.a, "every-pod", everyPod, `[{"port": 9090}]`, tcpIs(9090)},
				{w.a, "srv", srv, `[{"port": 9100, "endPort": 9102}]`, tcpIs(9100, 9101, 9102)},
			}
		}},
		{"three: every pod 9090, app=srv 9100-9102, app in (srv,cli) udp/5454", func() []overlapPolicy {
			return []overlapPolicy{
				{w.a, "every-pod", everyPod, `[{"port": 9090}]`, tcpIs(9090)},
				{w.a, "srv", srv, `[{"port": 9100, "endPort": 9102}]`, tcpIs(9100, 9101, 9102)},
				{w.a, "srv-or-cli", `{"matchExpressions": [{"key": "app", "operator": "In", "values": ["srv", "cli"]}]}`, `[{"port": 5454, "protocol": "UDP"}]`, udpIs(5454)},
			}
		}},
		{"cluster plus namespace: cluster app=srv 9090 in a and b, namespace a every pod 9100-9102", func() []overlapPolicy {
			return []overlapPolicy{
				{"", "overlap-" + w.run, srv, `[{"port": 9090}]`, tcpIs(9090)},
				{w.a, "every-pod", everyPod, `[{"port": 9100, "endPort": 9102}]`, tcpIs(9100, 9101, 9102)},
			}
		}},
		{"the tenant's {podSelector: {}, ports: [1]} beside a policy", func() []overlapPolicy {
			return []overlapPolicy{
				{w.a, "port-1", everyPod, `[{"port": 1}]`, tcpIs(1)},
				{w.a, "guard", srv, protectedPorts, protected},
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.t = t
			w.runOverlap(tc.name, tc.policies())
		})
	}
}

// TestOverlappingPoliciesRandom: a sample of the property test of
// internal/netpol (TestClosedProperty) on the real enforcer: random
// selectors and ports, the union of loopguard's NetworkPolicies closes
// exactly the ports of the policies selecting each server.
func TestOverlappingPoliciesRandom(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, "overlaprand")
	srvA := podRef{w.a, "srv"}
	w.focus = &srvA
	t.Cleanup(func() { t.Logf("TestOverlappingPoliciesRandom took %s", time.Since(start).Round(time.Second)) })
	r := rand.New(rand.NewSource(15))
	selectors := []string{
		`{}`,
		`{"matchLabels": {"app": "srv"}}`,
		`{"matchLabels": {"app": "cli"}}`,
		`{"matchExpressions": [{"key": "app", "operator": "In", "values": ["srv", "cli"]}]}`,
		`{"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["cli"]}]}`,
		`{"matchExpressions": [{"key": "app", "operator": "Exists"}]}`,
		`{"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}`,
	}
	for i := 0; i < 3; i++ {
		var policies []overlapPolicy
		for j, n := 0, 2+r.Intn(3); j < n; j++ {
			p := serverPorts[r.Intn(len(serverPorts))]
			policies = append(policies, overlapPolicy{
				ns: w.a, name: fmt.Sprintf("rand-%d-%d", i, j), selector: selectors[r.Intn(len(selectors))],
				ports:  fmt.Sprintf(`[{"port": %d, "protocol": %q}]`, p.Num, p.Proto),
				closes: func(q port) bool { return q == p },
			})
		}
		var desc []string
		for _, p := range policies {
			desc = append(desc, p.selector+" "+p.ports)
		}
		name := fmt.Sprintf("random case %d", i)
		t.Run(name, func(t *testing.T) {
			w.t = t
			t.Logf("%s:\n  %s", name, strings.Join(desc, "\n  "))
			w.runOverlap(name, policies)
		})
	}
}

func jsonUnmarshal(s string, into any) error { return json.Unmarshal([]byte(s), into) }
