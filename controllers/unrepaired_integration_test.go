package controllers_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestNetworkPolicyNoOwnerRepairsIsJudged: a tenant's LoopbackService
// whose pods cannot be another policy's holds a finalizer of the tenant's
// and is deleted: it no longer repairs its NetworkPolicy, which the
// tenant then edits to select the other policies' pods and allow every
// port. That NetworkPolicy is no longer the function of its owner that a
// managed one is, so it must reach every policy applying there, namespaced
// and cluster, like any other NetworkPolicy: both report the conflict.
// Mapped to the policies overlapping its owner only (none), neither did.
func TestNetworkPolicyNoOwnerRepairsIsJudged(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("ct-unrepaired-%d", nsSeq.Load()+1)
	ns := namespace(t, map[string]string{label: "yes"})
	runningPod(g, ns, "cart-1", "node-a", false)
	guard := lbs(ns, "guard", v1alpha1.LoopbackPort{Port: 6379})
	g.Expect(env.Client.Create(ctx, guard)).To(Succeed())
	mesh := clusterLBS(label, map[string]string{label: "yes"}, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, mesh)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, mesh) })
	decoy := lbs(ns, "decoy", v1alpha1.LoopbackPort{Port: 1})
	decoy.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "nothing-else"}}
	decoy.Finalizers = []string{"example.com/hold"}
	g.Expect(env.Client.Create(ctx, decoy)).To(Succeed())
	t.Cleanup(func() {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(decoy), decoy); err == nil {
			decoy.Finalizers = nil
			_ = env.Client.Update(ctx, decoy)
		}
	})
	effective := func(obj client.Object, conds func() []metav1.Condition) func() *metav1.Condition {
		return condition(g, obj, conds, v1alpha1.ConditionNetworkPolicyEffective)
	}
	guardEffective := effective(guard, func() []metav1.Condition { return guard.Status.Conditions })
	meshEffective := effective(mesh, func() []metav1.Condition { return mesh.Status.Conditions })
	g.Eventually(guardEffective, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	g.Eventually(meshEffective, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	npName := rules.ManagedNetworkPolicyName(rules.PolicyRef{Kind: rules.KindLoopbackService, Name: "decoy"})
	managedNP(g, ns, npName)

	g.Expect(env.Client.Delete(ctx, decoy)).To(Succeed())
	g.Eventually(func() bool {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(decoy), decoy)).To(Succeed())
		return decoy.DeletionTimestamp != nil
	}, timeout, poll).Should(BeTrue())
	np := managedNP(g, ns, npName)
	g.Expect(env.Change(ctx, np, func() {
		np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{}) // every port, from anywhere
	})).To(Succeed())

	g.Eventually(guardEffective, timeout, poll).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Message", ContainSubstring(npName))))
	g.Eventually(meshEffective, timeout, poll).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Message", ContainSubstring(npName))))
}

// TestNameTakenStaysReportedWhenTheSelectorMoves: a cluster policy whose
// selector moves to a namespace where a tenant squats its managed name
// reads that namespace for want of an audit of its new generation; the
// audit is kept, the NetworkPolicy is not. The retries that follow must
// read that namespace again and keep reporting the name taken: served
// from the kept audit, the retry listed the squatted NetworkPolicy as
// kept and the policy went back to Ready.
func TestNameTakenStaysReportedWhenTheSelectorMoves(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	name := fmt.Sprintf("ct-moved-%d", nsSeq.Load()+1)
	namespace(t, map[string]string{name: "before"})
	squatted := namespace(t, map[string]string{name: "after"})
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: squatted, Name: "loopguard-cluster-" + name},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	g.Expect(env.Client.Create(ctx, np)).To(Succeed())
	clbs := clusterLBS(name, map[string]string{name: "before"}, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	ready := condition(g, clbs, func() []metav1.Condition { return clbs.Status.Conditions }, v1alpha1.ConditionReady)
	g.Eventually(ready, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))

	g.Expect(env.Change(ctx, clbs, func() { clbs.Spec.NamespaceSelector.MatchLabels = map[string]string{name: "after"} })).To(Succeed())
	taken := And(HaveField("Status", metav1.ConditionFalse), HaveField("Message", ContainSubstring(squatted+"/loopguard-cluster-"+name)))
	g.Eventually(ready, timeout, poll).Should(taken)
	failed := reconcilesWith(g, controllers.ClusterLoopbackServiceControllerName, "error")
	g.Eventually(func() float64 { return reconcilesWith(g, controllers.ClusterLoopbackServiceControllerName, "error") }, timeout, poll).
		Should(BeNumerically(">=", failed+2), "the failed reconcile was not retried")
	g.Expect(ready()).To(taken)
}
