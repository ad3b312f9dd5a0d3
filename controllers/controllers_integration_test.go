package controllers_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
)

const (
	timeout = 20 * time.Second
	poll    = 50 * time.Millisecond
)

var (
	nsSeq   atomic.Int32
	dns1123 = regexp.MustCompile(`[^a-z0-9-]+`)
)

func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("ct-%d-%s", nsSeq.Add(1), dns1123.ReplaceAllString(strings.ToLower(t.Name()), "-"))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

func lbs(ns, name string, ports ...v1alpha1.LoopbackPort) *v1alpha1.LoopbackService {
	return &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       ports,
		},
	}
}

// clusterLBS is a ClusterLoopbackService of the namespaces labelled
// nsLabels, selecting app=cart like lbs.
func clusterLBS(name string, nsLabels map[string]string, ports ...v1alpha1.LoopbackPort) *v1alpha1.ClusterLoopbackService {
	return &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{
			NamespaceSelector:   metav1.LabelSelector{MatchLabels: nsLabels},
			LoopbackServiceSpec: lbs("", "", ports...).Spec,
		},
	}
}

func managedNP(g Gomega, ns, name string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{}
	g.Eventually(func() error {
		return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, np)
	}, timeout, poll).Should(Succeed())
	return np
}

func condition(g Gomega, obj client.Object, conds func() []metav1.Condition, typ string) func() *metav1.Condition {
	return func() *metav1.Condition {
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return meta.FindStatusCondition(conds(), typ)
	}
}

// portsOf renders a NetworkPolicy's ingress ports as "proto:from-to".
func portsOf(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			s := string(*p.Protocol) + ":"
			switch {
			case p.Port == nil:
				s += "all"
			case p.EndPort != nil:
				s += fmt.Sprintf("%d-%d", p.Port.IntVal, *p.EndPort)
			default:
				s += fmt.Sprintf("%d", p.Port.IntVal)
			}
			out = append(out, s)
		}
	}
	return out
}

func TestManagedNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "edges",
		v1alpha1.LoopbackPort{Port: 1},
		v1alpha1.LoopbackPort{Port: 100, EndPort: ptr.To[int32](200)},
		v1alpha1.LoopbackPort{Port: 150, EndPort: ptr.To[int32](250)}, // overlaps
		v1alpha1.LoopbackPort{Port: 251},                              // adjacent
		v1alpha1.LoopbackPort{Port: 65535},
		v1alpha1.LoopbackPort{Port: 53, Protocol: corev1.ProtocolUDP},
	)
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())

	np := managedNP(g, ns, "loopguard-edges")
	g.Expect(portsOf(np)).To(Equal([]string{"TCP:2-99", "TCP:252-65534", "UDP:1-52", "UDP:54-65535", "SCTP:all"}))
	g.Expect(np.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
	g.Expect(np.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"app": "cart"}))
	g.Expect(np.Spec.Ingress[0].From).To(BeEmpty(), "every source may reach the open ports")
	g.Expect(metav1.IsControlledBy(np, policy)).To(BeTrue())
	g.Expect(np.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "loopguard"))

	t.Run("drift is repaired", func(t *testing.T) {
		g := NewWithT(t)
		// Allow everything, as a user's kubectl patch would.
		g.Expect(env.Client.Patch(ctx, np, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"ingress":[{}]}}`)))).To(Succeed())
		g.Eventually(func() []string { return portsOf(managedNP(g, ns, "loopguard-edges")) }, timeout, poll).
			Should(Equal([]string{"TCP:2-99", "TCP:252-65534", "UDP:1-52", "UDP:54-65535", "SCTP:all"}))
	})
	t.Run("deleted is recreated", func(t *testing.T) {
		g := NewWithT(t)
		old := managedNP(g, ns, "loopguard-edges")
		g.Expect(env.Client.Delete(ctx, old)).To(Succeed())
		g.Eventually(func() bool {
			cur := &networkingv1.NetworkPolicy{}
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "loopguard-edges"}, cur)
			return err == nil && cur.UID != old.UID
		}, timeout, poll).Should(BeTrue())
	})
	t.Run("Disabled removes it", func(t *testing.T) {
		g := NewWithT(t)
		// A merge patch, as kubectl patch sends: no conflict with the
		// controller's concurrent status writes.
		g.Expect(env.Client.Patch(ctx, policy, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"networkPolicy":"Disabled"}}`)))).To(Succeed())
		g.Eventually(func() bool {
			return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "loopguard-edges"}, &networkingv1.NetworkPolicy{}))
		}, timeout, poll).Should(BeTrue())
		g.Eventually(condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionNetworkPolicyEffective), timeout, poll).
			Should(HaveField("Reason", v1alpha1.ReasonNetworkPolicyDisabled))
	})
	t.Run("deleting the policy garbage-collects it", func(t *testing.T) {
		g := NewWithT(t)
		p2 := lbs(ns, "short-lived", v1alpha1.LoopbackPort{Port: 9000})
		g.Expect(env.Client.Create(ctx, p2)).To(Succeed())
		managedNP(g, ns, "loopguard-short-lived")
		g.Expect(env.Client.Delete(ctx, p2)).To(Succeed())
		g.Eventually(func() bool {
			return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "loopguard-short-lived"}, &networkingv1.NetworkPolicy{}))
		}, timeout, poll).Should(BeTrue(), "kube-controller-manager's garbage collector removes the owned NetworkPolicy")
	})
}

func TestConflictingNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "admin", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	effective := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionNetworkPolicyEffective)
	g.Eventually(effective, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))

	allowAll := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-all", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
		},
	}
	g.Expect(env.Client.Create(ctx, allowAll)).To(Succeed())
	g.Eventually(effective, timeout, poll).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", v1alpha1.ReasonConflictingPolicies),
		HaveField("Message", ContainSubstring("allow-all (spec.ingress[0] allows every port, admitting 15000/TCP)")),
	))
	g.Eventually(func() []string { return eventReasons(ns, "admin") }, timeout, poll).Should(ContainElement("ConflictingNetworkPolicy"))

	g.Expect(env.Client.Delete(ctx, allowAll)).To(Succeed())
	g.Eventually(effective, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))

	rangePolicy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "range", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{
				Port: ptr.To(intstr.FromInt32(14000)), EndPort: ptr.To[int32](16000),
			}}}},
		},
	}
	g.Expect(env.Client.Create(ctx, rangePolicy)).To(Succeed())
	// It selects app=cart only: a conflict once a protected pod exists.
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app"}}},
	})).To(Succeed())
	g.Eventually(effective, timeout, poll).Should(HaveField("Message", ContainSubstring("range (spec.ingress[0] allows ports 14000-16000, admitting 15000/TCP)")))
}

// objectEvents returns the Events of namespace ns about the object name.
func objectEvents(ns, name string) []eventsv1.Event {
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// eventRelated names the related objects ("Kind namespace/name") of the
// Events of one reason about an object.
func eventRelated(ns, name, reason string) []string {
	var related []string
	for _, e := range objectEvents(ns, name) {
		if e.Reason == reason && e.Related != nil {
			related = append(related, e.Related.Kind+" "+e.Related.Namespace+"/"+e.Related.Name)
		}
	}
	return related
}

// eventNotes are the notes of the Events of one reason about an object.
func eventNotes(ns, name, reason string) []string {
	var notes []string
	for _, e := range objectEvents(ns, name) {
		if e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

func eventReasons(ns, name string) []string {
	var out []string
	for _, e := range objectEvents(ns, name) {
		out = append(out, e.Reason)
	}
	return out
}

// TestAuditOfExistingObjects creates violating objects before the policy
// and checks status, Events and the Compliant condition.
func TestAuditOfExistingObjects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-1", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "registry.invalid/envoy",
			Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec:       corev1.PodSpec{HostNetwork: true, NodeName: "node-a", Containers: []corev1.Container{{Name: "agent", Image: "registry.invalid/agent"}}},
	})).To(Succeed())

	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	compliant := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionCompliant)
	g.Eventually(compliant, timeout, poll).Should(HaveField("Status", metav1.ConditionFalse))
	g.Expect(*policy.Status.MatchedPods).To(BeEquivalentTo(2))
	g.Expect(*policy.Status.ViolationCount).To(BeEquivalentTo(2))
	g.Expect(policy.Status.Violations).To(ConsistOf(
		And(HaveField("Kind", "Pod"), HaveField("Name", "cart-1"), HaveField("Reason", "ContainerPort"),
			HaveField("Field", "spec.containers[0].ports[0].containerPort"), HaveField("Port", BeEquivalentTo(15000))),
		And(HaveField("Kind", "Pod"), HaveField("Name", "node-agent"), HaveField("Reason", "HostNetwork")),
	))
	g.Expect(policy.Status.HostNetworkPods).To(ConsistOf(v1alpha1.HostNetworkPod{Namespace: ns, Name: "node-agent", Node: "node-a"}))
	g.Eventually(func() []string { return eventReasons(ns, "envoy") }, timeout, poll).Should(ContainElement("Violation"))
	// Each Violation Event names the violating object as its related one.
	g.Eventually(func() []string { return eventRelated(ns, "envoy", "Violation") }, timeout, poll).
		Should(ContainElements("Pod "+ns+"/cart-1", "Pod "+ns+"/node-agent"))

	// Fixing it (deleting the pods) makes the policy compliant again.
	g.Expect(env.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(compliant, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
}

// TestQuietWhenNothingChanges checks a reconcile with nothing new writes
// nothing: the resourceVersions of the policy and its NetworkPolicy hold.
func TestQuietWhenNothingChanges(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "quiet", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	g.Eventually(condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionReady), timeout, poll).
		Should(HaveField("Status", metav1.ConditionTrue))
	// Every controller that writes status has written: the policy
	// reconciler (Ready), the runtime controller (RuntimeVerified) and the
	// webhook registration (Enforced).
	g.Eventually(condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionRuntimeVerified), timeout, poll).
		ShouldNot(BeNil())
	g.Eventually(condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionEnforced), timeout, poll).
		Should(HaveField("Status", metav1.ConditionTrue))
	np := managedNP(g, ns, "loopguard-quiet")
	rv, npRV := policy.ResourceVersion, np.ResourceVersion
	// An unrelated change in the namespace triggers a reconcile: wait until
	// one has finished, then nothing may have been written.
	before := reconciles(g, controllers.LoopbackServiceControllerName)
	g.Expect(env.Client.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	})).To(Succeed())
	g.Eventually(func() float64 { return reconciles(g, controllers.LoopbackServiceControllerName) }, timeout, poll).
		Should(BeNumerically(">", before), "no reconcile ran after the Service was created")
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(np), np)).To(Succeed())
	g.Expect([]string{policy.ResourceVersion, np.ResourceVersion}).To(Equal([]string{rv, npRV}), "the reconcile wrote the policy or its NetworkPolicy")
}

// TestClusterPolicyAcrossNamespaces checks a ClusterLoopbackService keeps a
// NetworkPolicy in every selected namespace and only there.
func TestClusterPolicyAcrossNamespaces(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a := namespace(t, map[string]string{"ct-enforce": "yes"})
	b := namespace(t, nil)
	clbs := clusterLBS("platform", map[string]string{"ct-enforce": "yes"}, v1alpha1.LoopbackPort{Port: 8126})
	clbs.Spec.PodSelector = metav1.LabelSelector{}
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	managedNP(g, a, "loopguard-cluster-platform")
	g.Consistently(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Namespace: b, Name: "loopguard-cluster-platform"}, &networkingv1.NetworkPolicy{}))
	}, time.Second, 100*time.Millisecond).Should(BeTrue())

	// Label b in: it gets one. Label a out: its one goes.
	nsB := &corev1.Namespace{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: b}, nsB)).To(Succeed())
	nsB.Labels["ct-enforce"] = "yes"
	g.Expect(env.Client.Update(ctx, nsB)).To(Succeed())
	managedNP(g, b, "loopguard-cluster-platform")
	nsA := &corev1.Namespace{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: a}, nsA)).To(Succeed())
	delete(nsA.Labels, "ct-enforce")
	g.Expect(env.Client.Update(ctx, nsA)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Namespace: a, Name: "loopguard-cluster-platform"}, &networkingv1.NetworkPolicy{}))
	}, timeout, poll).Should(BeTrue())
	g.Eventually(func() []string {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		return clbs.Status.NetworkPolicies
	}, timeout, poll).Should(Equal([]string{b + "/loopguard-cluster-platform"}))
}

// TestAuditOfHandWrittenEndpointSlices: an existing hand-written
// EndpointSlice that routes to a protected port of a selected pod is a
// violation, whatever namespace it is in (CVE-2021-25740) and whatever
// managed-by label it carries; one the EndpointSlice controller wrote for a
// Service with a selector (its label, and a controller reference to the
// Service with its UID) is the Service's business.
func TestAuditOfHandWrittenEndpointSlices(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	other := namespace(t, nil)
	pod := runningPod(g, ns, "cart-1", "node-a", false)
	pod.Status.PodIP, pod.Status.PodIPs = "10.244.0.21", []corev1.PodIP{{IP: "10.244.0.21"}}
	g.Expect(env.Client.Status().Update(ctx, pod)).To(Succeed())
	slice := func(ns, name string, labels map[string]string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](15000)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.21"}}},
		}
	}
	controllers := map[string]string{discoveryv1.LabelServiceName: "cart", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}
	manual := slice(ns, "admin-1", map[string]string{discoveryv1.LabelServiceName: "admin"})
	g.Expect(env.Client.Create(ctx, manual)).To(Succeed())
	// The controller's: there is no EndpointSlice controller here, so
	// written as it would be.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "cart"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	g.Expect(env.Client.Create(ctx, svc)).To(Succeed())
	owned := slice(ns, "cart-abcde", controllers)
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "cart", UID: svc.UID, Controller: ptr.To(true)}}
	g.Expect(env.Client.Create(ctx, owned)).To(Succeed())
	// The label alone proves nothing.
	g.Expect(env.Client.Create(ctx, slice(ns, "cart-fake", controllers))).To(Succeed())
	// Another namespace's slice listing the pod's IP.
	g.Expect(env.Client.Create(ctx, slice(other, "steal", nil))).To(Succeed())

	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	compliant := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionCompliant)
	g.Eventually(compliant, timeout, poll).Should(HaveField("Status", metav1.ConditionFalse))
	g.Eventually(func() []v1alpha1.Violation {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.Violations
	}, timeout, poll).Should(ConsistOf(
		And(HaveField("Kind", "EndpointSlice"), HaveField("Namespace", ns), HaveField("Name", "admin-1"), HaveField("Reason", "EndpointTarget"),
			HaveField("Field", "ports[0].port"), HaveField("Port", BeEquivalentTo(15000)),
			HaveField("Message", ContainSubstring(`routes port 15000/TCP at ports[0].port to pod "cart-1"`))),
		And(HaveField("Kind", "EndpointSlice"), HaveField("Namespace", ns), HaveField("Name", "cart-fake")),
		And(HaveField("Kind", "EndpointSlice"), HaveField("Namespace", other), HaveField("Name", "steal"),
			HaveField("Message", ContainSubstring(`to pod "`+ns+`/cart-1"`))),
	))

	// Removing the slices fixes it: their deletion reaches the policy,
	// the other namespace's too.
	g.Expect(env.Client.Delete(ctx, manual)).To(Succeed())
	g.Expect(env.Client.Delete(ctx, slice(ns, "cart-fake", nil))).To(Succeed())
	g.Expect(env.Client.Delete(ctx, slice(other, "steal", nil))).To(Succeed())
	g.Eventually(compliant, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
}
