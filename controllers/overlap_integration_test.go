package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestOverlappingPoliciesCloseEachOthersPorts: issue #15 hole 1. Each
// managed NetworkPolicy keeps closed the ports of every policy whose pods
// may be its pods, kept current as policies come and go.
func TestOverlappingPoliciesCloseEachOthersPorts(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	envoy := lbs(ns, "envoy-admin", v1alpha1.LoopbackPort{Port: 15000})
	envoy.Spec.PodSelector = metav1.LabelSelector{}
	redis := lbs(ns, "cart-redis", v1alpha1.LoopbackPort{Port: 6379})
	web := lbs(ns, "web", v1alpha1.LoopbackPort{Port: 9090})
	web.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	for _, p := range []*v1alpha1.LoopbackService{envoy, redis, web} {
		g.Expect(env.Client.Create(ctx, p)).To(Succeed())
	}
	ports := func(name string) func() []string {
		return func() []string { return portsOf(managedNP(g, ns, name)) }
	}
	g.Eventually(ports("loopguard-envoy-admin"), timeout, poll).Should(Equal([]string{"TCP:1-6378", "TCP:6380-9089", "TCP:9091-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))
	g.Eventually(ports("loopguard-cart-redis"), timeout, poll).Should(Equal([]string{"TCP:1-6378", "TCP:6380-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}), "app=cart and app=web never meet")

	// The tenant's {podSelector: {}, ports: [1]}: every other closes 1, it closes all theirs.
	tenant := lbs(ns, "port-1", v1alpha1.LoopbackPort{Port: 1})
	tenant.Spec.PodSelector = metav1.LabelSelector{}
	g.Expect(env.Client.Create(ctx, tenant)).To(Succeed())
	g.Eventually(ports("loopguard-port-1"), timeout, poll).Should(Equal([]string{"TCP:2-6378", "TCP:6380-9089", "TCP:9091-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))
	g.Eventually(ports("loopguard-cart-redis"), timeout, poll).Should(Equal([]string{"TCP:2-6378", "TCP:6380-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))
	g.Eventually(ports("loopguard-web"), timeout, poll).Should(Equal([]string{"TCP:2-9089", "TCP:9091-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))
	for _, p := range []*v1alpha1.LoopbackService{envoy, redis, web, tenant} {
		g.Eventually(condition(g, p, func() []metav1.Condition { return p.Status.Conditions }, v1alpha1.ConditionNetworkPolicyEffective), timeout, poll).
			Should(HaveField("Status", metav1.ConditionTrue), p.Name)
	}
	g.Expect(eventReasons(ns, "cart-redis")).To(ContainElement("NetworkPolicyUpdated"))
	g.Expect(eventReasons(ns, "cart-redis")).NotTo(ContainElement("NetworkPolicyRepaired"), "a change for an overlapping policy is no drift")

	// Gone: port 1 opens again.
	g.Expect(env.Client.Delete(ctx, tenant)).To(Succeed())
	g.Eventually(ports("loopguard-cart-redis"), timeout, poll).Should(Equal([]string{"TCP:1-6378", "TCP:6380-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))
}

// TestManagedByLabelProvesNothing: issue #15 hole 2. An allow-all
// NetworkPolicy with loopguard's label is a conflict like any other.
func TestManagedByLabelProvesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "admin", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	effective := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionNetworkPolicyEffective)
	g.Eventually(effective, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(env.Client.Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-all", Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "loopguard"}},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
		},
	})).To(Succeed())
	g.Eventually(effective, timeout, poll).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Message", ContainSubstring("allow-all (spec.ingress[0] allows every port, admitting 15000/TCP)")),
	))
}

// TestClusterConflictsNameTheirNamespace: a ClusterLoopbackService's
// conflicts come from many namespaces. A tenant who names a NetworkPolicy
// like one already reported in another namespace must still be reported,
// in the condition's message and by an Event, with its namespace; before,
// the message named the NetworkPolicy only, so the second re-opening read
// like the first and changed nothing.
func TestClusterConflictsNameTheirNamespace(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a := namespace(t, map[string]string{"ct-conflicts": "yes"})
	b := namespace(t, map[string]string{"ct-conflicts": "yes"})
	clbs := clusterLBS("ct-conflicts", map[string]string{"ct-conflicts": "yes"}, v1alpha1.LoopbackPort{Port: 15000})
	clbs.Spec.PodSelector = metav1.LabelSelector{}
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	effective := condition(g, clbs, func() []metav1.Condition { return clbs.Status.Conditions }, v1alpha1.ConditionNetworkPolicyEffective)
	g.Eventually(effective, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	allowAll := func(ns string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "allow-ingress", Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
			},
		}
	}
	conflictEvents := func() []string { return eventNotes("default", clbs.Name, "ConflictingNetworkPolicy") }
	g.Expect(env.Client.Create(ctx, allowAll(a))).To(Succeed())
	g.Eventually(effective, timeout, poll).Should(HaveField("Message", ContainSubstring(a+"/allow-ingress (spec.ingress[0]")))
	g.Eventually(conflictEvents, timeout, poll).Should(ContainElement(ContainSubstring(a + "/allow-ingress")))

	g.Expect(env.Client.Create(ctx, allowAll(b))).To(Succeed())
	g.Eventually(effective, timeout, poll).Should(HaveField("Message", And(
		ContainSubstring(a+"/allow-ingress (spec.ingress[0]"), ContainSubstring(b+"/allow-ingress (spec.ingress[0]"))))
	g.Eventually(conflictEvents, timeout, poll).Should(ContainElement(ContainSubstring(b + "/allow-ingress")))
}
