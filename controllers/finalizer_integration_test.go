package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/internal/netpol"
)

// testHold is a finalizer the test puts on a pod so that it outlives the
// namespace's other objects, as a pod in its grace period does on a node.
const testHold = "test.loopguard.io/hold"

func lingeringPod(ns string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "lingers", Namespace: ns, Labels: labels, Finalizers: []string{testHold}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// TestNetworkPolicyOutlivesProtectedPods is CVE-2024-7598: while a
// namespace terminates, the managed NetworkPolicy stays until the last pod
// it protects is gone, then the namespace finishes. The v1.37 namespace
// controller here deletes pods before anything else (ordered namespace
// deletion), so the test deletes the NetworkPolicy itself, as older
// namespace controllers did in no set order.
func TestNetworkPolicyOutlivesProtectedPods(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	g.Expect(env.Client.Create(ctx, lbs(ns, "held", v1alpha1.LoopbackPort{Port: 15000}))).To(Succeed())
	np := managedNP(g, ns, "loopguard-held")
	g.Expect(np.Finalizers).To(ContainElement(netpol.FinalizerPodsGone))

	pod := lingeringPod(ns, map[string]string{"app": "cart"})
	g.Expect(env.Client.Create(ctx, pod)).To(Succeed())
	t.Cleanup(func() { releasePod(ctx, pod) })

	g.Expect(env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		g.Expect(pod.DeletionTimestamp).NotTo(BeNil())
	}, timeout, poll).Should(Succeed())
	g.Expect(env.Client.Delete(ctx, np)).To(Succeed())

	g.Consistently(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(np), np)).To(Succeed())
		g.Expect(np.DeletionTimestamp).NotTo(BeNil())
		g.Expect(np.Finalizers).To(ContainElement(netpol.FinalizerPodsGone))
	}, "2s", poll).Should(Succeed(), "a terminating namespace keeps the NetworkPolicy while its pod runs")

	releasePod(ctx, pod)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(np), &networkingv1.NetworkPolicy{}))
	}, timeout, poll).Should(BeTrue(), "the NetworkPolicy is released once its pod is gone")
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}))
	}, timeout, poll).Should(BeTrue(), "the namespace finishes terminating")
}

// TestNetworkPolicyOutlivesOnlyRunningProtectedPods: in a terminating
// namespace, pods that linger but that the NetworkPolicy does not
// protect, or that finished, do not hold it. They are in the manager's
// pod cache when it is released: they were written before the protected
// pod, whose presence held it.
func TestNetworkPolicyOutlivesOnlyRunningProtectedPods(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	g.Expect(env.Client.Create(ctx, lbs(ns, "held", v1alpha1.LoopbackPort{Port: 15000}))).To(Succeed())
	np := managedNP(g, ns, "loopguard-held")

	var bystanders []*corev1.Pod
	for _, b := range []struct {
		name   string
		labels map[string]string
		phase  corev1.PodPhase
	}{
		{"unselected", map[string]string{"app": "other"}, ""},
		{"succeeded", map[string]string{"app": "cart"}, corev1.PodSucceeded},
		{"failed", map[string]string{"app": "cart"}, corev1.PodFailed},
	} {
		pod := lingeringPod(ns, b.labels)
		pod.Name = b.name
		g.Expect(env.Client.Create(ctx, pod)).To(Succeed())
		t.Cleanup(func() { releasePod(ctx, pod) })
		if b.phase != "" {
			pod.Status.Phase = b.phase
			g.Expect(env.Client.Status().Update(ctx, pod)).To(Succeed())
		}
		bystanders = append(bystanders, pod)
	}
	protected := lingeringPod(ns, map[string]string{"app": "cart"})
	g.Expect(env.Client.Create(ctx, protected)).To(Succeed())
	t.Cleanup(func() { releasePod(ctx, protected) })

	g.Expect(env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		for _, p := range append([]*corev1.Pod{protected}, bystanders...) {
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.DeletionTimestamp).NotTo(BeNil())
		}
	}, timeout, poll).Should(Succeed())
	// The controller must have seen the pods and decided to hold (its only
	// requeue) before the protected pod goes: else a release proves nothing.
	held := reconcilesWith(g, controllers.PodsGoneControllerName, "requeue_after")
	g.Expect(env.Client.Delete(ctx, np)).To(Succeed())
	g.Eventually(func(g Gomega) float64 {
		return reconcilesWith(g, controllers.PodsGoneControllerName, "requeue_after")
	}, timeout, poll).Should(BeNumerically(">", held), "the NetworkPolicy is held while the protected pod runs")
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(np), np)).To(Succeed())
	g.Expect(np.Finalizers).To(ContainElement(netpol.FinalizerPodsGone))

	releasePod(ctx, protected)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(np), &networkingv1.NetworkPolicy{}))
	}, timeout, poll).Should(BeTrue(), "the NetworkPolicy is released while the other pods linger")
	for _, p := range bystanders {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{})).To(Succeed(), "%s no longer lingers", p.Name)
	}
}

// TestNetworkPolicyReleasedOutsideTermination: deleting a policy, or
// disabling its NetworkPolicy, is intended and must not wait for pods.
func TestNetworkPolicyReleasedOutsideTermination(t *testing.T) {
	for _, tc := range []struct {
		name string
		undo func(ctx context.Context, p *v1alpha1.LoopbackService) error
	}{
		{"policy deleted", func(ctx context.Context, p *v1alpha1.LoopbackService) error { return env.Client.Delete(ctx, p) }},
		{"networkPolicy Disabled", func(ctx context.Context, p *v1alpha1.LoopbackService) error {
			patch := client.MergeFrom(p.DeepCopy())
			p.Spec.NetworkPolicy = v1alpha1.NetworkPolicyDisabled
			return env.Client.Patch(ctx, p, patch)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns := namespace(t, nil)
			p := lbs(ns, "released", v1alpha1.LoopbackPort{Port: 15000})
			g.Expect(env.Client.Create(ctx, p)).To(Succeed())
			np := managedNP(g, ns, "loopguard-released")
			pod := lingeringPod(ns, map[string]string{"app": "cart"})
			g.Expect(env.Client.Create(ctx, pod)).To(Succeed())
			t.Cleanup(func() { releasePod(ctx, pod) })

			g.Expect(tc.undo(ctx, p)).To(Succeed())
			g.Eventually(func() bool {
				return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(np), &networkingv1.NetworkPolicy{}))
			}, timeout, poll).Should(BeTrue(), "a running protected pod does not hold an intended deletion")
		})
	}
}

func releasePod(ctx context.Context, pod *corev1.Pod) {
	cur := &corev1.Pod{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), cur); err != nil {
		return
	}
	patch := client.MergeFrom(cur.DeepCopy())
	controllerutil.RemoveFinalizer(cur, testHold)
	_ = env.Client.Patch(ctx, cur, patch)
	_ = env.Client.Delete(ctx, cur)
}
