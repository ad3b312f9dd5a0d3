package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestViolationsFollowNewPods checks that violating pods created after the
// policy (let through by Warn) are counted as they come, not only those
// that existed before it.
func TestViolationsFollowNewPods(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	policy.Spec.EnforcementAction = v1alpha1.ActionWarn
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	violations := func() int32 {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		if policy.Status.ViolationCount == nil {
			return -1
		}
		return *policy.Status.ViolationCount
	}
	g.Eventually(violations, timeout, poll).Should(BeEquivalentTo(0))
	for i, name := range []string{"cart-1", "cart-2", "cart-3"} {
		g.Expect(env.Client.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "cart"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "registry.invalid/envoy",
				Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}},
		})).To(Succeed())
		g.Eventually(violations, timeout, poll).Should(BeEquivalentTo(i+1), "after creating %s", name)
	}
}
