package controllers

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestStatusIgnoresListOrder checks that the same observation in another
// order (the cache lists in no fixed order) gives an equal status, so that
// a reconcile with nothing new writes nothing.
func TestStatusIgnoresListOrder(t *testing.T) {
	mk := func(reverse bool) *outcome {
		hn := []v1alpha1.HostNetworkPod{{Namespace: "a", Name: "p1"}, {Namespace: "a", Name: "p2"}, {Namespace: "b", Name: "p0"}}
		nps := []string{"b/loopguard-cluster-x", "a/loopguard-cluster-x"}
		cs := []netpol.Conflict{{Name: "allow-all", Port: rules.PortRange{Protocol: "TCP", From: 1, To: 1}}, {Name: "range", Rule: 1, Port: rules.PortRange{Protocol: "TCP", From: 1, To: 1}}}
		if reverse {
			hn[0], hn[2] = hn[2], hn[0]
			nps[0], nps[1] = nps[1], nps[0]
			cs[0], cs[1] = cs[1], cs[0]
		}
		return &outcome{mode: v1alpha1.NetworkPolicyManaged, hostNetworkPods: hn, networkPolicies: nps, conflicts: cs, protected: "1/TCP"}
	}
	a := computeStatus(v1alpha1.LoopbackServiceStatus{}, 1, mk(false))
	b := computeStatus(v1alpha1.LoopbackServiceStatus{}, 1, mk(true))
	for i := range b.Conditions {
		b.Conditions[i].LastTransitionTime = a.Conditions[i].LastTransitionTime
	}
	if !equality.Semantic.DeepEqual(a, b) {
		t.Fatalf("status depends on list order:\n%+v\n%+v", a, b)
	}
}

// TestAdminModeWithoutTheAPI: Admin on a cluster without AdminNetworkPolicy
// keeps the NetworkPolicies and says so in NetworkPolicyEffective.
func TestAdminModeWithoutTheAPI(t *testing.T) {
	o := &outcome{mode: v1alpha1.NetworkPolicyAdmin, adminErr: errNoAdminNetworkPolicyAPI, networkPolicies: []string{"loopguard-x"}, protected: "15000/TCP"}
	st := computeStatus(v1alpha1.LoopbackServiceStatus{}, 1, o)
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonAdminNetworkPolicyUnavailable {
		t.Fatalf("NetworkPolicyEffective = %+v, want False/%s", c, v1alpha1.ReasonAdminNetworkPolicyUnavailable)
	}
	for _, want := range []string{"no AdminNetworkPolicy API", "NetworkPolicy loopguard-x still blocks ingress to 15000/TCP"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q lacks %q", c.Message, want)
		}
	}
}

// TestAdminModeWithConflicts: in Admin mode a conflicting NetworkPolicy no
// longer opens the port to pods (the AdminNetworkPolicy comes first), so
// the condition is True and says what the conflict still admits.
func TestAdminModeWithConflicts(t *testing.T) {
	o := &outcome{mode: v1alpha1.NetworkPolicyAdmin, adminNetworkPolicy: "loopguard-x", networkPolicies: []string{"ns/loopguard-cluster-x"}, protected: "15000/TCP",
		conflicts: []netpol.Conflict{{Name: "allow-all", Port: rules.PortRange{Protocol: "TCP", From: 15000, To: 15000}}}}
	st := computeStatus(v1alpha1.LoopbackServiceStatus{}, 1, o)
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonAdminNetworkPolicyApplied {
		t.Fatalf("NetworkPolicyEffective = %+v, want True/%s", c, v1alpha1.ReasonAdminNetworkPolicyApplied)
	}
	for _, want := range []string{"AdminNetworkPolicy loopguard-x denies every pod's traffic to 15000/TCP", "outside the pod network", "allow-all"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q lacks %q", c.Message, want)
		}
	}
}

// TestNewViolationsTellPortsApart: a Service whose targetPort moves from
// one protected port to another keeps its field path; the new exposure is
// a new violation and gets its Event.
func TestNewViolationsTellPortsApart(t *testing.T) {
	v := func(port int32, reason string) v1alpha1.Violation {
		return v1alpha1.Violation{Kind: "Service", Namespace: "shop", Name: "cart", Field: "spec.ports[0].targetPort",
			Port: port, Protocol: corev1.ProtocolTCP, Reason: reason, Message: fmt.Sprintf("port %d", port)}
	}
	old := []v1alpha1.Violation{v(6060, "ServiceTarget")}
	for _, tc := range []struct {
		name string
		cur  v1alpha1.Violation
		want int
	}{
		{"the same", v(6060, "ServiceTarget"), 0},
		{"another port", v(15000, "ServiceTarget"), 1},
		{"another protocol", func() v1alpha1.Violation { x := v(6060, "ServiceTarget"); x.Protocol = corev1.ProtocolUDP; return x }(), 1},
		{"another reason", v(6060, "SelectedByService"), 1},
	} {
		if got := newViolations(old, []v1alpha1.Violation{tc.cur}); len(got) != tc.want {
			t.Errorf("%s: %d new violations, want %d", tc.name, len(got), tc.want)
		}
	}
}
