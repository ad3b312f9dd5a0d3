package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestFirstStatusWriteCarriesRuntime checks that a new policy's runtime
// view is written with the rest of its first status, not in a status
// write of its own (at 10,000 policies that second write per policy was
// half of the policy status writes, issue 18): no version of the policy
// shows RuntimeVerified before the policy reconciler's first write, and
// that write holds RuntimeVerified, and Compliant carrying its finding,
// for the generation.
func TestFirstStatusWriteCarriesRuntime(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	pod := runningPod(g, ns, "cart-1", node, false)
	writeReport(g, node, time.Now(), podReport(pod, tcp("0.0.0.0", 15000)))

	// A first policy shows the finding: the manager's cache holds the
	// report before the policy under test is created.
	first := lbs(ns, "first", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, first)).To(Succeed())
	verified := condition(g, first, func() []metav1.Condition { return first.Status.Conditions }, v1alpha1.ConditionRuntimeVerified)
	g.Eventually(verified, timeout, poll).Should(HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback))

	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	var list v1alpha1.LoopbackServiceList
	g.Expect(env.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := wc.Watch(wctx, &v1alpha1.LoopbackServiceList{}, client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()

	policy := lbs(ns, "second", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	gen := policy.Generation
	for {
		var ev watch.Event
		g.Eventually(w.ResultChan(), timeout).Should(Receive(&ev), "the policy's first status write")
		got, ok := ev.Object.(*v1alpha1.LoopbackService)
		if !ok || got.Name != policy.Name {
			continue
		}
		st := got.Status
		rt := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRuntimeVerified)
		if st.ObservedGeneration != gen {
			g.Expect(rt).To(BeNil(), "resourceVersion %s: the runtime view written before the policy's first status", got.ResourceVersion)
			continue
		}
		g.Expect(rt).NotTo(BeNil(), "the first status write has no RuntimeVerified")
		g.Expect(*rt).To(And(HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback), HaveField("ObservedGeneration", gen)))
		g.Expect(st.Runtime).To(HaveField("PodsBeyondLoopback", BeEquivalentTo(1)))
		compliant := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCompliant)
		g.Expect(compliant).NotTo(BeNil())
		g.Expect(*compliant).To(HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback))
		break
	}
	// Whoever writes the finding announces it.
	g.Eventually(func() []string { return runtimeEvents(ns, policy.Name) }, timeout, poll).Should(ContainElement(ContainSubstring("pod " + ns + "/cart-1 listens on 0.0.0.0:15000/TCP")))
}
