package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestRuntimeVerified follows the runtime controller's condition through
// the life of a policy's runtime view (no report, a clean scan, a finding,
// the fix) and checks that the two controllers writing the policy's status
// keep each other's fields: the policy reconciler's audit does not drop
// status.runtime, and the runtime view does not drop the audit.
func TestRuntimeVerified(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	// A declared violation, made before the policy (the webhook would
	// refuse it after).
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web",
			Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}},
	}
	g.Expect(env.Client.Create(ctx, web)).To(Succeed())
	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	pod := runningPod(g, ns, "cart-1", node, false)
	verified := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionRuntimeVerified)
	compliant := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionCompliant)

	// No agent on the node: Unknown, and no runtime section; Compliant is
	// the declared audit's.
	g.Eventually(verified, timeout, poll).Should(And(HaveField("Status", metav1.ConditionUnknown),
		HaveField("Reason", v1alpha1.ReasonNoNodeBindReports), HaveField("ObservedGeneration", policy.Generation)))
	g.Expect(policy.Status.Runtime).To(BeNil())
	g.Eventually(compliant, timeout, poll).Should(HaveField("Reason", v1alpha1.ReasonViolationsFound))

	// A clean scan verifies the pod, and keeps the audit.
	writeReport(g, node, time.Now(), podReport(pod))
	g.Eventually(verified, timeout, poll).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonNotListeningBeyondLoopback)))
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{PodsChecked: 1}))
	g.Expect(policy.Status.ViolationCount).To(HaveValue(BeEquivalentTo(1)))
	g.Expect(compliant()).To(HaveField("Reason", v1alpha1.ReasonViolationsFound))

	// A finding: RuntimeVerified False, carried into Compliant with the
	// declared violation counted; the audit is kept.
	writeReport(g, node, time.Now(), podReport(pod, tcp("0.0.0.0", 15000)))
	g.Eventually(compliant, timeout, poll).Should(And(HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback),
		HaveField("Message", ContainSubstring("; besides, 1 existing objects expose protected ports (status.violations)"))))
	g.Expect(verified()).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback),
		HaveField("Message", HavePrefix("1 selected pod listens on a protected port beyond loopback: pod "+ns+"/cart-1 listens on 0.0.0.0:15000/TCP"))))
	g.Expect(policy.Status.ViolationCount).To(HaveValue(BeEquivalentTo(1)))

	// The fix: back to the declared violation alone.
	writeReport(g, node, time.Now(), podReport(pod))
	g.Eventually(compliant, timeout, poll).Should(HaveField("Reason", v1alpha1.ReasonViolationsFound))
	g.Expect(verified()).To(HaveField("Status", metav1.ConditionTrue))

	// The declared violation goes (the policy reconciler's write): the
	// runtime view is kept.
	g.Expect(env.Client.Delete(ctx, web, client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(compliant, timeout, poll).Should(HaveField("Reason", v1alpha1.ReasonNoViolations))
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{PodsChecked: 1}))
	g.Expect(verified()).To(HaveField("Status", metav1.ConditionTrue))

	// The pod goes: nothing left to check.
	g.Expect(env.Client.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(verified, timeout, poll).Should(HaveField("Reason", v1alpha1.ReasonNoNodeBindReports))
	g.Expect(policy.Status.Runtime).To(BeNil())
}
