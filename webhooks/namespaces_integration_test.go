package webhooks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/webhooks"
)

// TestNewNamespaceJudgedFromItsFirstWrite: a namespace that a cluster
// policy selects, written to before its informer event reaches the
// policy index (kubectl create namespace && kubectl apply, helm
// --create-namespace), is judged by the labels the API server holds. The
// index here never sees the namespace, which is that window held open.
func TestNewNamespaceJudgedFromItsFirstWrite(t *testing.T) {
	ctx := context.Background()
	idx := policyindex.New()
	clbs := &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: "fresh-ns"}}
	clbs.Spec.NamespaceSelector.MatchLabels = map[string]string{"fresh-env": "prod"}
	clbs.Spec.Ports = []v1alpha1.LoopbackPort{{Port: 15000}}
	if err := idx.SetClusterLoopbackService(clbs); err != nil {
		t.Fatal(err)
	}
	idx.MarkSynced()
	ns := namespace(t, map[string]string{"fresh-env": "prod"})
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "admin"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "proxy", Image: "x",
			Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}}}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns, Name: "admin", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}

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
