package slim_test

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/slim"
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
	outAny, err := slim.Pod(in)
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
	if o, _ := slim.Pod(&corev1.Service{}); o == nil {
		t.Errorf("non-pods must pass through")
	}
}

// TestPodKeepsNodeMateRisks checks a slimmed pod has the same node-mate
// risks as the pod it came from: the cache must not hide a privileged pod.
func TestPodKeepsNodeMateRisks(t *testing.T) {
	base := func(f func(*corev1.PodSpec)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
			Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "i",
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(1000))}}}}}
		f(&p.Spec)
		return p
	}
	for name, p := range map[string]*corev1.Pod{
		"privileged": base(func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Privileged = ptr.To(true) }),
		"privileged init": base(func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "i", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}),
		"privileged ephemeral": base(func(s *corev1.PodSpec) {
			s.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "e", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
		}),
		"hostPID SYS_PTRACE": base(func(s *corev1.PodSpec) {
			s.HostPID = true
			s.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}, Drop: []corev1.Capability{"ALL"}}
		}),
		"hostNetwork NET_ADMIN": base(func(s *corev1.PodSpec) {
			s.HostNetwork = true
			s.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}
		}),
		"hostPath /proc among others": base(func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "proc", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/proc", Type: ptr.To(corev1.HostPathDirectory)}}}}
		}),
		"harmless": base(func(*corev1.PodSpec) {}),
	} {
		t.Run(name, func(t *testing.T) {
			want := hostnet.NodeMateRisks(&p.Spec)
			out, err := slim.Pod(p.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			if got := hostnet.NodeMateRisks(&out.(*corev1.Pod).Spec); !reflect.DeepEqual(got, want) {
				t.Errorf("risks after slim: %v, want %v", got, want)
			}
		})
	}
}

// TestPodSlimsInPlace: the transform keeps the decoder's containers rather
// than copying them, so a cached pod costs no second container slice (a
// corev1.Container is 408 bytes however few fields are set).
func TestPodSlimsInPlace(t *testing.T) {
	pod := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "a"}},
			Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{
				{Name: "app", Image: "registry.invalid/app:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
				{Name: "sidecar", Image: "registry.invalid/sidecar:1", Args: []string{"--admin=127.0.0.1:15000"}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}}
	}
	pods := make([]*corev1.Pod, 100)
	for i := range pods {
		pods[i] = pod()
	}
	i := 0
	allocs := testing.AllocsPerRun(len(pods)-1, func() {
		p := pods[i]
		i++
		containers := p.Spec.Containers
		if _, err := slim.Pod(p); err != nil {
			t.Fatal(err)
		}
		if &p.Spec.Containers[0] != &containers[0] {
			t.Fatal("the containers were copied")
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations a pod, want 0", allocs)
	}
	got := pods[0].Spec.Containers[1]
	if got.Name != "sidecar" || got.Image != "" || got.Args != nil {
		t.Errorf("second container %+v, want its name only", got)
	}
}
