package controllers

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestAuditMemoReauditsWhatChanged: a policy's audit of a namespace is
// kept only while nothing it reads has changed. Each step changes one
// input (creates, updates and deletes of the namespace's objects of every
// kind the audit reads; a hand-written EndpointSlice in another namespace
// naming a selected pod, and a controller-written one that turns
// hand-written when its Service goes; the namespace's labels; the
// policy's spec) and must be audited again, with the findings the change
// brings; a step that changes nothing the audit reads (an object of
// another namespace, a slice that is a Service's finding) must reuse it.
// Every step is observed twice: the second must reuse the first.
func TestAuditMemoReauditsWhatChanged(t *testing.T) {
	ctx := context.Background()
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "u-web-1", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "envoy"}}},
		Status:     corev1.PodStatus{PodIP: "10.1.0.7", PodIPs: []corev1.PodIP{{IP: "10.1.0.7"}}},
	}
	c := fake.NewClientBuilder().WithScheme(app.Scheme()).WithObjects(web).
		WithIndex(&discoveryv1.EndpointSlice{}, addrindex.SliceIP, addrindex.SliceIPs).
		WithIndex(&discoveryv1.EndpointSlice{}, addrindex.SlicePod, addrindex.SlicePods).
		Build()
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh", UID: "u-mesh", Generation: 1},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
		}},
	}
	policy, err := rules.CompileCluster(clbs)
	if err != nil {
		t.Fatal(err)
	}
	nsLabels := labels.Set{"team": "a"}
	memo := newAuditMemo()
	observeTwice := func(t *testing.T) (first *observation, audited bool) {
		t.Helper()
		first, audited, err := memo.observe(ctx, c, policy, "shop", nsLabels)
		if err != nil {
			t.Fatal(err)
		}
		second, again, err := memo.observe(ctx, c, policy, "shop", nsLabels)
		if err != nil {
			t.Fatal(err)
		}
		if again {
			t.Errorf("audited again with nothing changed since")
		}
		if len(second.findings) != len(first.findings) || second.matchedPods != first.matchedPods {
			t.Errorf("kept audit has %d findings and %d pods, the audit %d and %d", len(second.findings), second.matchedPods, len(first.findings), first.matchedPods)
		}
		return first, audited
	}
	create := func(o client.Object) func(*testing.T) {
		return func(t *testing.T) {
			if err := c.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	exposing := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "admin"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(15000)}}},
	}
	mirror := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "mirror", UID: "u-mirror"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "mirror"}, Ports: []corev1.ServicePort{{Port: 15000}}},
	}
	steps := []struct {
		name      string
		change    func(*testing.T)
		audited   bool
		findings  int
		conflicts int
	}{
		{"first audit", func(*testing.T) {}, true, 0, 0},
		{"a pod of the namespace changes", func(t *testing.T) {
			p := &corev1.Pod{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(web), p); err != nil {
				t.Fatal(err)
			}
			p.Labels["version"] = "2"
			if err := c.Update(ctx, p); err != nil {
				t.Fatal(err)
			}
		}, true, 0, 0},
		{"a pod is added", create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-2", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "envoy"}}}}), true, 0, 0},
		{"an object of another namespace changes", create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "admin"},
			Spec: exposing.Spec}), false, 0, 0},
		// The Service, and each pod it selects.
		{"a Service exposes the port", create(exposing), true, 3, 0},
		{"a NetworkPolicy is added", create(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "allow-all"},
			Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}), true, 3, 1},
		// Its hostPort, and the Service selecting its pods.
		{"a workload exposes the port on the host", create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "envoy",
						Ports: []corev1.ContainerPort{{ContainerPort: 15000, HostPort: 15000}}}}}}}}), true, 5, 1},
		{"a hand-written slice in another namespace names a selected pod's IP", create(&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "other", Name: "steal"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.7"}}},
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](15000)}},
		}), true, 6, 1},
		// Left out as the Service's finding, and its Service is in no
		// namespace this audit reads: nothing to audit again.
		{"a slice the EndpointSlice controller writes for a Service of another namespace names the pod", func(t *testing.T) {
			create(mirror)(t)
			create(&discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "mirror-x", Labels: map[string]string{
					discoveryv1.LabelServiceName: "mirror", discoveryv1.LabelManagedBy: rules.EndpointSliceControllerName},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "mirror", UID: mirror.UID, Controller: ptr.To(true)}}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.7"}}},
				Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](15000)}},
			})(t)
		}, false, 6, 1},
		{"that Service is deleted: its slice is hand-written now", func(t *testing.T) {
			if err := c.Delete(ctx, mirror); err != nil {
				t.Fatal(err)
			}
		}, true, 7, 1},
		// The Service's finding, and those of the pods and the workload it
		// selects, go.
		{"the exposing Service is changed to another port", func(t *testing.T) {
			svc := &corev1.Service{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(exposing), svc); err != nil {
				t.Fatal(err)
			}
			svc.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
			if err := c.Update(ctx, svc); err != nil {
				t.Fatal(err)
			}
		}, true, 3, 1},
		{"the NetworkPolicy is deleted", func(t *testing.T) {
			if err := c.Delete(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "allow-all"}}); err != nil {
				t.Fatal(err)
			}
		}, true, 3, 0},
		{"the namespace's labels change", func(*testing.T) { nsLabels = labels.Set{"team": "b"} }, true, 3, 0},
		{"the policy's spec changes", func(*testing.T) {
			clbs.Generation++
			clbs.Spec.Ports = []v1alpha1.LoopbackPort{{Port: 15001}}
			if policy, err = rules.CompileCluster(clbs); err != nil {
				t.Fatal(err)
			}
		}, true, 0, 0},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.change(t)
			obs, audited := observeTwice(t)
			if audited != step.audited {
				t.Errorf("audited = %v, want %v", audited, step.audited)
			}
			if len(obs.findings) != step.findings {
				t.Errorf("%d findings, want %d: %v", len(obs.findings), step.findings, obs.findings)
			}
			if len(obs.conflicts) != step.conflicts {
				t.Errorf("%d NetworkPolicy conflicts, want %d: %v", len(obs.conflicts), step.conflicts, obs.conflicts)
			}
		})
	}
	memo.retain(policy.Ref, map[string]bool{})
	if _, audited, _ := memo.observe(ctx, c, policy, "shop", nsLabels); !audited {
		t.Errorf("a namespace retain dropped was not audited again")
	}
	memo.forget(policy.Ref)
	if _, audited, _ := memo.observe(ctx, c, policy, "shop", nsLabels); !audited {
		t.Errorf("a forgotten policy's namespace was not audited again")
	}
}
