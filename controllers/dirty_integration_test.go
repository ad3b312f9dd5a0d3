package controllers_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestClusterPolicyReadsAgainTheNamespaceASliceReaches: a cluster policy's
// reconcile reads again only the namespaces its events marked (dirty.go).
// A hand-written EndpointSlice in a namespace the policy does not select,
// naming a selected pod, changes the audit of the pod's namespace
// (CVE-2021-25740): its event must mark that namespace, not only the
// slice's own. Its removal must too, and the finding of another selected
// namespace, not read again meanwhile, must stay.
func TestClusterPolicyReadsAgainTheNamespaceASliceReaches(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("ct-dirty-%d", nsSeq.Load()+1)
	ns := namespace(t, map[string]string{label: "yes"})
	exposed := namespace(t, map[string]string{label: "yes"})
	outside := namespace(t, nil)
	pod := runningPod(g, ns, "cart-1", "node-a", false)
	pod.Status.PodIP, pod.Status.PodIPs = "10.244.7.31", []corev1.PodIP{{IP: "10.244.7.31"}}
	g.Expect(env.Client.Status().Update(ctx, pod)).To(Succeed())
	runningPod(g, exposed, "cart-2", "node-a", false)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: exposed},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "cart"}, Ports: []corev1.ServicePort{{Port: 15000}}},
	}
	g.Expect(env.Client.Create(ctx, svc)).To(Succeed())

	clbs := clusterLBS(label, map[string]string{label: "yes"}, v1alpha1.LoopbackPort{Port: 15000})
	clbs.Spec.PodSelector = metav1.LabelSelector{}
	clbs.Spec.EnforcementAction = v1alpha1.ActionAudit // admits the slice
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	violations := func() []v1alpha1.Violation {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		return clbs.Status.Violations
	}
	service := And(HaveField("Kind", "Service"), HaveField("Namespace", exposed), HaveField("Name", "cart"))
	selected := And(HaveField("Kind", "Pod"), HaveField("Namespace", exposed), HaveField("Name", "cart-2"))
	// The first reconcile read both namespaces.
	g.Eventually(func() int32 { violations(); return ptr.Deref(clbs.Status.MatchedPods, 0) }, timeout, poll).Should(BeEquivalentTo(2))
	g.Eventually(violations, timeout, poll).Should(ConsistOf(service, selected))

	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "steal", Namespace: outside},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](15000)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.7.31"}}},
	}
	g.Expect(env.Client.Create(ctx, slice)).To(Succeed())
	g.Eventually(violations, timeout, poll).Should(ConsistOf(service, selected,
		And(HaveField("Kind", "EndpointSlice"), HaveField("Namespace", outside), HaveField("Name", "steal"),
			HaveField("Message", ContainSubstring(`to pod "`+ns+`/cart-1"`)))))

	g.Expect(env.Client.Delete(ctx, slice)).To(Succeed())
	g.Eventually(violations, timeout, poll).Should(ConsistOf(service, selected))
}

// TestServiceChangeReachesThePodsItsSlicesName: an EndpointSlice that
// carries a Service's name, the EndpointSlice controller's label and a
// controller reference to the Service is that Service's business, not a
// finding; once the Service loses its selector, the same slice is
// hand-written and a finding of the policies of the pods it names, in
// any namespace. The Service's change must reach those policies, and a
// cluster policy must read their namespace again (dirty.go): mapped to
// the Service's own namespace only, neither did.
func TestServiceChangeReachesThePodsItsSlicesName(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("ct-svcslice-%d", nsSeq.Load()+1)
	// One policy of each kind, each alone in its namespace: no event of
	// the one reaches the other.
	guarded := namespace(t, nil)
	meshed := namespace(t, map[string]string{label: "yes"})
	outside := namespace(t, nil)
	for i, ns := range []string{guarded, meshed} {
		pod := runningPod(g, ns, "cart-1", "node-a", false)
		ip := fmt.Sprintf("10.244.7.%d", 41+i)
		pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		g.Expect(env.Client.Status().Update(ctx, pod)).To(Succeed())
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: outside},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "front"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	g.Expect(env.Client.Create(ctx, svc)).To(Succeed())
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "front-abcde", Namespace: outside,
			Labels:          map[string]string{discoveryv1.LabelServiceName: "front", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "front", UID: svc.UID, Controller: ptr.To(true)}}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](15000)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.7.41"}}, {Addresses: []string{"10.244.7.42"}}},
	}
	g.Expect(env.Client.Create(ctx, slice)).To(Succeed())

	guard := lbs(guarded, "guard", v1alpha1.LoopbackPort{Port: 15000})
	guard.Spec.EnforcementAction = v1alpha1.ActionAudit
	g.Expect(env.Client.Create(ctx, guard)).To(Succeed())
	mesh := clusterLBS(label, map[string]string{label: "yes"}, v1alpha1.LoopbackPort{Port: 15000})
	mesh.Spec.EnforcementAction = v1alpha1.ActionAudit
	g.Expect(env.Client.Create(ctx, mesh)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, mesh) })
	for _, c := range []func() *metav1.Condition{
		condition(g, guard, func() []metav1.Condition { return guard.Status.Conditions }, v1alpha1.ConditionCompliant),
		condition(g, mesh, func() []metav1.Condition { return mesh.Status.Conditions }, v1alpha1.ConditionCompliant),
	} {
		g.Eventually(c, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	}

	svc.Spec.Selector = nil
	g.Expect(env.Client.Update(ctx, svc)).To(Succeed())
	stolen := ContainElement(And(HaveField("Kind", "EndpointSlice"), HaveField("Namespace", outside), HaveField("Name", "front-abcde")))
	g.Eventually(func() []v1alpha1.Violation {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(guard), guard)).To(Succeed())
		return guard.Status.Violations
	}, timeout, poll).Should(stolen)
	g.Eventually(func() []v1alpha1.Violation {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(mesh), mesh)).To(Succeed())
		return mesh.Status.Violations
	}, timeout, poll).Should(stolen)
}
