package controllers

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// ownedConditions are the conditions the policy reconciler sets.
var ownedConditions = []string{v1alpha1.ConditionReady, v1alpha1.ConditionNetworkPolicyEffective, v1alpha1.ConditionCompliant}

// TestEveryOwnedConditionIsSet: whatever the reconcile's outcome, each
// condition the policy reconciler owns is set, with the generation it is
// about; a failed reconcile keeps the last good observation of the
// conditions it could not observe, and says Unknown when there is none.
func TestEveryOwnedConditionIsSet(t *testing.T) {
	errBoom := errors.New("boom")
	earlier := v1alpha1.LoopbackServiceStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled, ObservedGeneration: 1},
		{Type: v1alpha1.ConditionNetworkPolicyEffective, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNetworkPolicyApplied, ObservedGeneration: 1},
		{Type: v1alpha1.ConditionCompliant, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonViolationsFound, ObservedGeneration: 1},
	}}
	type want struct {
		status     metav1.ConditionStatus
		reason     string
		generation int64
	}
	cases := []struct {
		name string
		old  v1alpha1.LoopbackServiceStatus
		o    *outcome
		want map[string]want
	}{
		{"does not compile", v1alpha1.LoopbackServiceStatus{}, &outcome{compileErr: errBoom}, map[string]want{
			v1alpha1.ConditionReady:                  {metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector, 2},
			v1alpha1.ConditionNetworkPolicyEffective: {metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, 2},
			v1alpha1.ConditionCompliant:              {metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, 2},
			// The runtime controller's condition, set as it would.
			v1alpha1.ConditionRuntimeVerified: {metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, 2},
		}},
		{"failed before any observation", v1alpha1.LoopbackServiceStatus{}, &outcome{reconcileErr: errBoom}, map[string]want{
			v1alpha1.ConditionReady:                  {metav1.ConditionFalse, v1alpha1.ReasonReconcileError, 2},
			v1alpha1.ConditionNetworkPolicyEffective: {metav1.ConditionUnknown, v1alpha1.ReasonReconcileError, 2},
			v1alpha1.ConditionCompliant:              {metav1.ConditionUnknown, v1alpha1.ReasonReconcileError, 2},
		}},
		{"failed after a good observation", earlier, &outcome{reconcileErr: errBoom}, map[string]want{
			v1alpha1.ConditionReady:                  {metav1.ConditionFalse, v1alpha1.ReasonReconcileError, 2},
			v1alpha1.ConditionNetworkPolicyEffective: {metav1.ConditionTrue, v1alpha1.ReasonNetworkPolicyApplied, 1},
			v1alpha1.ConditionCompliant:              {metav1.ConditionFalse, v1alpha1.ReasonViolationsFound, 1},
		}},
		{"enforced", earlier, &outcome{mode: v1alpha1.NetworkPolicyManaged, networkPolicies: []string{"loopguard-x"}, protected: "15000/TCP"}, map[string]want{
			v1alpha1.ConditionReady:                  {metav1.ConditionTrue, v1alpha1.ReasonReconciled, 2},
			v1alpha1.ConditionNetworkPolicyEffective: {metav1.ConditionTrue, v1alpha1.ReasonNetworkPolicyApplied, 2},
			v1alpha1.ConditionCompliant:              {metav1.ConditionTrue, v1alpha1.ReasonNoViolations, 2},
		}},
		{"partially enforced", v1alpha1.LoopbackServiceStatus{}, &outcome{mode: v1alpha1.NetworkPolicyManaged, namespaces: 2,
			failures: []namespaceFailure{{namespace: "b", err: errBoom}}}, map[string]want{
			v1alpha1.ConditionReady:                  {metav1.ConditionFalse, v1alpha1.ReasonPartiallyReconciled, 2},
			v1alpha1.ConditionNetworkPolicyEffective: {metav1.ConditionTrue, v1alpha1.ReasonNetworkPolicyApplied, 2},
			v1alpha1.ConditionCompliant:              {metav1.ConditionTrue, v1alpha1.ReasonNoViolations, 2},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			st := computeStatus(tc.old, 2, tc.o)
			for _, ct := range ownedConditions {
				g.Expect(tc.want).To(HaveKey(ct))
			}
			g.Expect(st.Conditions).To(HaveLen(len(tc.want)))
			for ct, w := range tc.want {
				c := meta.FindStatusCondition(st.Conditions, ct)
				g.Expect(c).NotTo(BeNil(), ct)
				g.Expect([]any{c.Status, c.Reason, c.ObservedGeneration}).To(Equal([]any{w.status, w.reason, w.generation}), ct)
			}
		})
	}
}

// TestCompliantSummarizesRuntimeVerified: Compliant carries the runtime
// controller's finding (a real exposure outranks a declared one, which the
// message still counts) and is otherwise the declared audit's.
func TestCompliantSummarizesRuntimeVerified(t *testing.T) {
	listening := "1 selected pod listens on a protected port beyond loopback: pod shop/cart listens on 0.0.0.0:15000/TCP beyond loopback; bind it to 127.0.0.1"
	finding := rules.Finding{Object: rules.ObjectRef{Kind: "Pod", Namespace: "shop", Name: "web"}, Field: "spec.containers[0].ports[0].containerPort", Reason: "x", Port: 15000}
	cases := []struct {
		name        string
		runtime     *metav1.Condition
		findings    []rules.Finding
		status      metav1.ConditionStatus
		reason, msg string
	}{
		{"no runtime view", nil, nil, metav1.ConditionTrue, v1alpha1.ReasonNoViolations, "no existing object exposes a protected port"},
		{"runtime unknown", &metav1.Condition{Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonNoNodeBindReports}, nil,
			metav1.ConditionTrue, v1alpha1.ReasonNoViolations, "no existing object exposes a protected port"},
		{"runtime verified, one declared", &metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNotListeningBeyondLoopback}, []rules.Finding{finding},
			metav1.ConditionFalse, v1alpha1.ReasonViolationsFound, "1 existing object exposes a protected port: "},
		{"listening beyond loopback", &metav1.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonListeningBeyondLoopback, Message: listening}, nil,
			metav1.ConditionFalse, v1alpha1.ReasonListeningBeyondLoopback, listening},
		{"listening and two declared", &metav1.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonListeningBeyondLoopback, Message: listening}, []rules.Finding{finding, finding},
			metav1.ConditionFalse, v1alpha1.ReasonListeningBeyondLoopback, listening + "; besides, 2 existing objects expose protected ports (status.violations)"},
		{"unexpected client and one declared", &metav1.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonUnexpectedClient, Message: "1 unexpected client"}, []rules.Finding{finding},
			metav1.ConditionFalse, v1alpha1.ReasonUnexpectedClient, "1 unexpected client; besides, 1 existing objects expose protected ports (status.violations)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var old v1alpha1.LoopbackServiceStatus
			if tc.runtime != nil {
				rt := *tc.runtime
				rt.Type = v1alpha1.ConditionRuntimeVerified
				old.Conditions = []metav1.Condition{rt}
			}
			st := computeStatus(old, 1, &outcome{mode: v1alpha1.NetworkPolicyManaged, findings: tc.findings})
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCompliant)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(tc.status))
			g.Expect(c.Reason).To(Equal(tc.reason))
			g.Expect(c.Message).To(HavePrefix(tc.msg))
			if tc.runtime != nil {
				// The runtime controller's condition is left as it was.
				g.Expect(meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRuntimeVerified)).To(HaveField("Reason", tc.runtime.Reason))
			}
		})
	}
}

// TestStatusCarriesTheRuntimeView: a reconcile that read the runtime view
// writes it (status.runtime, RuntimeVerified) and Compliant summarizes it
// in the same status; one that did not keeps both as read.
func TestStatusCarriesTheRuntimeView(t *testing.T) {
	g := NewWithT(t)
	rt := &v1alpha1.RuntimeStatus{PodsChecked: 1, PodsBeyondLoopback: 1, Listeners: []v1alpha1.RuntimeListener{
		{Namespace: "shop", Pod: "cart", Node: "n1", Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000}}}
	st := computeStatus(v1alpha1.LoopbackServiceStatus{}, 3, &outcome{mode: v1alpha1.NetworkPolicyManaged, runtime: rt, runtimeObserved: true})
	g.Expect(st.Runtime).To(Equal(rt))
	g.Expect(meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRuntimeVerified)).To(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback), HaveField("ObservedGeneration", int64(3))))
	g.Expect(meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCompliant)).To(HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback))

	kept := computeStatus(st, 4, &outcome{mode: v1alpha1.NetworkPolicyManaged})
	g.Expect(kept.Runtime).To(Equal(rt))
	g.Expect(meta.FindStatusCondition(kept.Conditions, v1alpha1.ConditionRuntimeVerified)).To(HaveField("ObservedGeneration", int64(3)))
}

// TestRuntimeVerifiedCondition: the runtime controller's condition for
// each state of status.runtime.
func TestRuntimeVerifiedCondition(t *testing.T) {
	l := v1alpha1.RuntimeListener{Namespace: "shop", Pod: "cart", Node: "n1", Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000}
	c := v1alpha1.RuntimeClient{Namespace: "shop", Pod: "cart", Node: "n1", Port: 15000, Container: "debug", Process: "nc",
		Field: "spec.ports[0].clients", Message: `port 15000/TCP: container "debug" (nc) is connected on loopback, but spec.ports[0].clients lists only ["app"]`}
	cases := []struct {
		name        string
		compileErr  error
		rt          *v1alpha1.RuntimeStatus
		status      metav1.ConditionStatus
		reason, msg string
	}{
		{"does not compile", errors.New("bad selector"), nil, metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, "the policy is not enforced: bad selector"},
		{"no reports", nil, nil, metav1.ConditionUnknown, v1alpha1.ReasonNoNodeBindReports, "no node of a selected running pod has a NodeBindReport"},
		{"one beyond loopback", nil, &v1alpha1.RuntimeStatus{PodsChecked: 2, PodsBeyondLoopback: 1, Listeners: []v1alpha1.RuntimeListener{l}},
			metav1.ConditionFalse, v1alpha1.ReasonListeningBeyondLoopback, "1 selected pod listens on a protected port beyond loopback: pod shop/cart listens on 0.0.0.0:15000/TCP beyond loopback (node n1)"},
		{"two beyond loopback", nil, &v1alpha1.RuntimeStatus{PodsChecked: 2, PodsBeyondLoopback: 2, Listeners: []v1alpha1.RuntimeListener{l, l}},
			metav1.ConditionFalse, v1alpha1.ReasonListeningBeyondLoopback, "2 selected pods listen on protected ports beyond loopback; the first: pod shop/cart"},
		{"one unexpected client", nil, &v1alpha1.RuntimeStatus{PodsChecked: 2, PodsUnchecked: 1, UnexpectedClientCount: 1, UnexpectedClients: []v1alpha1.RuntimeClient{c}},
			metav1.ConditionFalse, v1alpha1.ReasonUnexpectedClient, "1 unexpected client is connected to a protected port on loopback: pod shop/cart on node n1, port 15000/TCP: container"},
		{"listening outranks clients, which are counted", nil, &v1alpha1.RuntimeStatus{PodsChecked: 2, PodsBeyondLoopback: 1, Listeners: []v1alpha1.RuntimeListener{l},
			UnexpectedClientCount: 3, UnexpectedClients: []v1alpha1.RuntimeClient{c, c, c}},
			metav1.ConditionFalse, v1alpha1.ReasonListeningBeyondLoopback, "1 selected pod listens on a protected port beyond loopback: pod shop/cart listens on 0.0.0.0:15000/TCP beyond loopback (node n1); bind it to 127.0.0.1; besides, 3 unexpected clients are connected (status.runtime.unexpectedClients)"},
		{"stale report", nil, &v1alpha1.RuntimeStatus{PodsChecked: 1, PodsUnchecked: 1, StaleNodes: []string{"n2"}},
			metav1.ConditionUnknown, v1alpha1.ReasonPodsUnchecked, "1 selected running pods are not checked"},
		{"all checked", nil, &v1alpha1.RuntimeStatus{PodsChecked: 3}, metav1.ConditionTrue, v1alpha1.ReasonNotListeningBeyondLoopback, "3 selected running pods checked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var st v1alpha1.LoopbackServiceStatus
			setRuntimeVerifiedCondition(&st, 3, tc.compileErr, tc.rt)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRuntimeVerified)
			g.Expect(c).NotTo(BeNil())
			g.Expect([]any{c.Status, c.Reason, c.ObservedGeneration}).To(Equal([]any{tc.status, tc.reason, int64(3)}))
			g.Expect(c.Message).To(HavePrefix(tc.msg))
		})
	}
}

// TestRunPhases: phases run in order; the first error stops them and
// names its phase; a policy that does not compile stops them without an
// error (status says why).
func TestRunPhases(t *testing.T) {
	errBoom := errors.New("boom")
	var ran []string
	step := func(name string, err error) phase {
		return phase{what: name, run: func(context.Context, *policyScope) error { ran = append(ran, name); return err }}
	}
	g := NewWithT(t)

	ran = nil
	err := runPhases(context.Background(), &policyScope{}, []phase{step("one", nil), step("two", errBoom), step("three", nil)})
	g.Expect(ran).To(Equal([]string{"one", "two"}))
	g.Expect(err).To(MatchError(errBoom))
	g.Expect(err.Error()).To(Equal("failed to two: boom"))

	ran = nil
	s := &policyScope{policy: &v1alpha1.LoopbackService{Spec: v1alpha1.LoopbackServiceSpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "-bad-"}}}}}
	err = runPhases(context.Background(), s, []phase{{"compile", reconcileCompile}, step("after", nil)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.compileErr).To(HaveOccurred())
	g.Expect(ran).To(BeEmpty())
}
