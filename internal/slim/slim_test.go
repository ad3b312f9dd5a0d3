package slim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestPodKeepsWhatRulesRead checks the transform keeps every field the
// exposure rules, the audit and the hostNetwork report read, and drops the
// rest.
func TestPodKeepsWhatRulesRead(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	in := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", Labels: map[string]string{"app": "cart"},
			Annotations:     map[string]string{"big": "annotation"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs", Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			HostNetwork: true, NodeName: "node-a",
			Containers: []corev1.Container{{Name: "envoy", Image: "envoy:1", Env: []corev1.EnvVar{{Name: "X", Value: "y"}},
				Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000}}}},
			InitContainers: []corev1.Container{{Name: "sidecar", Image: "s", RestartPolicy: &always,
				Ports: []corev1.ContainerPort{{ContainerPort: 9901}}}},
			Volumes: []corev1.Volume{{Name: "v"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}},
	}
	outAny, err := Pod(in)
	if err != nil {
		t.Fatal(err)
	}
	out := outAny.(*corev1.Pod)
	switch {
	case out.Labels["app"] != "cart", len(out.OwnerReferences) != 1:
		t.Errorf("metadata lost: %+v", out.ObjectMeta)
	case out.Annotations != nil, out.ManagedFields != nil:
		t.Errorf("annotations or managedFields kept")
	case !out.Spec.HostNetwork, out.Spec.NodeName != "node-a":
		t.Errorf("hostNetwork or nodeName lost")
	case out.Spec.Containers[0].Ports[0].ContainerPort != 15000, out.Spec.Containers[0].Ports[0].Name != "admin", out.Spec.Containers[0].Name != "envoy":
		t.Errorf("container ports lost: %+v", out.Spec.Containers)
	case out.Spec.InitContainers[0].RestartPolicy == nil, out.Spec.InitContainers[0].Ports[0].ContainerPort != 9901:
		t.Errorf("sidecar lost: %+v", out.Spec.InitContainers)
	case out.Spec.Containers[0].Image != "", out.Spec.Containers[0].Env != nil, out.Spec.Volumes != nil:
		t.Errorf("unused spec fields kept: %+v", out.Spec)
	case out.Status.PodIP != "10.0.0.1", out.Status.Phase != corev1.PodRunning, out.Status.Conditions != nil:
		t.Errorf("status not trimmed to phase and IPs: %+v", out.Status)
	}
	if o, _ := Pod(&corev1.Service{}); o == nil {
		t.Errorf("non-pods must pass through")
	}
}
