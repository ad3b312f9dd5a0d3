package webhooks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/webhooks"
)

// clusterPolicyIndex is a synced policy index holding one
// ClusterLoopbackService, name, protecting port 15000 in the namespaces
// labelled key=prod, and no namespace: every namespace is new to it.
func clusterPolicyIndex(t *testing.T, name, key string) *policyindex.Index {
	t.Helper()
	idx := policyindex.New()
	clbs := &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: name}}
	clbs.Spec.NamespaceSelector.MatchLabels = map[string]string{key: "prod"}
	clbs.Spec.Ports = []v1alpha1.LoopbackPort{{Port: 15000}}
	if err := idx.SetClusterLoopbackService(clbs); err != nil {
		t.Fatal(err)
	}
	idx.MarkSynced()
	return idx
}

// createReview is the admission review of creating obj (its TypeMeta set),
// a resource of obj's group and version.
func createReview(t *testing.T, obj client.Object, resource string) admission.Request {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: types.UID(obj.GetName()),
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resource},
		Namespace: obj.GetNamespace(), Name: obj.GetName(), Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
}

// TestNewNamespaceJudgedFromItsFirstWrite: a namespace that a cluster
// policy selects, written to before its informer event reaches the
// policy index (kubectl create namespace && kubectl apply, helm
// --create-namespace), is judged by the labels the API server holds. The
// index here never sees the namespace, which is that window held open.
func TestNewNamespaceJudgedFromItsFirstWrite(t *testing.T) {
	ctx := context.Background()
	idx := clusterPolicyIndex(t, "fresh-ns", "fresh-env")
	ns := namespace(t, map[string]string{"fresh-env": "prod"})
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "admin"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "proxy", Image: "x",
			Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}}}
	req := createReview(t, pod, "pods")

	// Without the live read (the code before): admitted.
	blind := &webhooks.ExposureValidator{Index: idx, Reader: env.Client}
	if resp := blind.Handle(ctx, req); !resp.Allowed {
		t.Fatalf("without the live read the pod was refused (%v): the test no longer shows the window", resp.Result)
	}
	v := &webhooks.ExposureValidator{Index: idx, Reader: env.Client, Namespaces: webhooks.LiveNamespaceLabels(env.Client)}
	resp := v.Handle(ctx, req)
	if resp.Allowed || resp.Result == nil {
		t.Fatalf("pod in a new namespace the cluster policy selects was admitted")
	}
	for _, want := range []string{"ClusterLoopbackService fresh-ns", "15000", "spec.containers[0].ports[0]"} {
		if !strings.Contains(resp.Result.Message, want) {
			t.Errorf("denial %q does not name %q", resp.Result.Message, want)
		}
	}
}

// TestSliceToPodsOfNewNamespaceJudged: a hand-written EndpointSlice in a
// namespace the index knows, listing a pod of one it has not seen yet, is
// judged by the pod's namespace's labels read live: the cluster policy
// selecting that namespace refuses it.
func TestSliceToPodsOfNewNamespaceJudged(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idx := clusterPolicyIndex(t, "fresh-slice", "fresh-slice")
	tenant := namespace(t, nil)
	idx.SetNamespaceLabels(tenant, nil)
	fresh := namespace(t, map[string]string{"fresh-slice": "prod"})
	const ip = "10.250.3.7"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fresh, Name: "admin"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "proxy", Image: "x",
			Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	ca := env.IndexedCache(ctx, t)
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := clusterindex.Pod(ctx, ca, pod.Namespace, pod.Name)
		return err == nil && p.PodIP == ip, nil
	}); err != nil {
		t.Fatalf("the pod with its IP never reached the cache: %v", err)
	}
	slice := &discoveryv1.EndpointSlice{TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  metav1.ObjectMeta{Namespace: tenant, Name: "to-admin"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](15000)}}}
	req := createReview(t, slice, "endpointslices")

	blind := &webhooks.ExposureValidator{Index: idx, Reader: ca}
	if resp := blind.Handle(ctx, req); !resp.Allowed {
		t.Fatalf("without the live read the slice was refused (%v): the test no longer shows the window", resp.Result)
	}
	v := &webhooks.ExposureValidator{Index: idx, Reader: ca, Namespaces: webhooks.LiveNamespaceLabels(env.Client)}
	resp := v.Handle(ctx, req)
	if resp.Allowed || resp.Result == nil {
		t.Fatalf("a slice reaching a pod of a new namespace the cluster policy selects was admitted")
	}
	if !strings.Contains(resp.Result.Message, "ClusterLoopbackService fresh-slice") {
		t.Errorf("denial %q does not name the policy", resp.Result.Message)
	}
}
