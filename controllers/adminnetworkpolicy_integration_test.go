package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	anpv1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestAdminNetworkPolicy: networkPolicy: Admin keeps an AdminNetworkPolicy
// (the CRD is installed in this control plane) that denies every pod's
// traffic to the protected ports of the selected pods, next to the
// NetworkPolicies; it is repaired, and removed when the mode changes back.
func TestAdminNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, map[string]string{"ct-admin": "yes"})
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "admin-mode"},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"ct-admin": "yes"}},
			AdminPriority:     ptr.To[int32](7),
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{
				PodSelector:   metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				Ports:         []v1alpha1.LoopbackPort{{Port: 15000}, {Port: 6060, EndPort: ptr.To[int32](6069)}, {Port: 8125, Protocol: "UDP"}},
				NetworkPolicy: v1alpha1.NetworkPolicyAdmin,
			},
		},
	}
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })

	anp := &anpv1alpha1.AdminNetworkPolicy{}
	key := client.ObjectKey{Name: "loopguard-admin-mode"}
	g.Eventually(func() error { return env.Client.Get(ctx, key, anp) }, timeout, poll).Should(Succeed())
	g.Expect(anp.Spec.Priority).To(BeEquivalentTo(7))
	g.Expect(anp.Spec.Subject.Pods).NotTo(BeNil())
	g.Expect(anp.Spec.Subject.Pods.NamespaceSelector.MatchLabels).To(Equal(map[string]string{"ct-admin": "yes"}))
	g.Expect(anp.Spec.Subject.Pods.PodSelector.MatchLabels).To(Equal(map[string]string{"app": "cart"}))
	g.Expect(anp.Spec.Ingress).To(HaveLen(1))
	rule := anp.Spec.Ingress[0]
	g.Expect(rule.Action).To(Equal(anpv1alpha1.AdminNetworkPolicyRuleActionDeny))
	g.Expect(rule.From).To(Equal([]anpv1alpha1.AdminNetworkPolicyIngressPeer{{Namespaces: &metav1.LabelSelector{}}}))
	g.Expect(*rule.Ports).To(ConsistOf(
		anpv1alpha1.AdminNetworkPolicyPort{PortNumber: &anpv1alpha1.Port{Protocol: "TCP", Port: 15000}},
		anpv1alpha1.AdminNetworkPolicyPort{PortRange: &anpv1alpha1.PortRange{Protocol: "TCP", Start: 6060, End: 6069}},
		anpv1alpha1.AdminNetworkPolicyPort{PortNumber: &anpv1alpha1.Port{Protocol: "UDP", Port: 8125}},
	))
	g.Expect(metav1.IsControlledBy(anp, clbs)).To(BeTrue())
	// Admin keeps the namespace NetworkPolicies too (they also cover
	// traffic from nodes and outside the cluster, which ANP cannot name).
	managedNP(g, ns, "loopguard-cluster-admin-mode")
	effective := condition(g, clbs, func() []metav1.Condition { return clbs.Status.Conditions }, v1alpha1.ConditionNetworkPolicyEffective)
	g.Eventually(effective, timeout, poll).Should(And(
		HaveField("Status", metav1.ConditionTrue),
		HaveField("Message", ContainSubstring("AdminNetworkPolicy loopguard-admin-mode denies it to every pod")),
	))

	// Drift: an edit that lets traffic through is undone.
	patch := client.MergeFrom(anp.DeepCopy())
	anp.Spec.Ingress[0].Action = anpv1alpha1.AdminNetworkPolicyRuleActionAllow
	g.Expect(env.Client.Patch(ctx, anp, patch)).To(Succeed())
	g.Eventually(func() anpv1alpha1.AdminNetworkPolicyRuleAction {
		g.Expect(env.Client.Get(ctx, key, anp)).To(Succeed())
		return anp.Spec.Ingress[0].Action
	}, timeout, poll).Should(Equal(anpv1alpha1.AdminNetworkPolicyRuleActionDeny))

	// Back to Managed: the AdminNetworkPolicy goes, the NetworkPolicy stays.
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
	cp := client.MergeFrom(clbs.DeepCopy())
	clbs.Spec.NetworkPolicy = v1alpha1.NetworkPolicyManaged
	g.Expect(env.Client.Patch(ctx, clbs, cp)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, key, &anpv1alpha1.AdminNetworkPolicy{}))
	}, timeout, poll).Should(BeTrue())
	managedNP(g, ns, "loopguard-cluster-admin-mode")
}

// TestAdminModeIsClusterOnly: a namespaced policy cannot ask for an
// AdminNetworkPolicy, and the API server says why and where.
func TestAdminModeIsClusterOnly(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t, nil)
	p := lbs(ns, "wants-admin", v1alpha1.LoopbackPort{Port: 15000})
	p.Spec.NetworkPolicy = v1alpha1.NetworkPolicyAdmin
	err := env.Client.Create(context.Background(), p)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(And(ContainSubstring("spec.networkPolicy"), ContainSubstring("needs a ClusterLoopbackService")))
}
