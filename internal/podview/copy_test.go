package podview_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/internal/podview"
)

// TestDeepCopyWritesNothingShared: a copy made to be written leaves the
// labels, owner references and spec that the cached pod shares with the
// other pods of its workload as they were (a write into the shared label
// map would change which policies select all of them).
func TestDeepCopyWritesNothingShared(t *testing.T) {
	transform := podview.NewTransform()
	pod := func(name string) *podview.Pod {
		o, err := transform(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"app": "cart"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "cart-1", UID: "u"}}},
			Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "envoy",
				Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*podview.Pod)
	}
	a, b := pod("a"), pod("b")
	if a.TrimmedSpec != b.TrimmedSpec {
		t.Fatal("two pods of one workload do not share their spec: the test cannot see a shared write")
	}
	c := a.DeepCopyObject().(*podview.Pod)
	c.Labels["app"] = "other"
	c.OwnerReferences[0].Name = "other"
	c.TrimmedSpec.Containers[0].Ports[0].ContainerPort = 1
	if b.Labels["app"] != "cart" || b.OwnerReferences[0].Name != "cart-1" || b.TrimmedSpec.Containers[0].Ports[0].ContainerPort != 15000 {
		t.Errorf("writing a copy of pod a changed pod b: labels %v, owner %s, port %d",
			b.Labels, b.OwnerReferences[0].Name, b.TrimmedSpec.Containers[0].Ports[0].ContainerPort)
	}
	if _, ok := podview.From(&podview.Pod{Name: "hand-made"}); ok {
		t.Error("From took a Pod without a spec: readers of TrimmedSpec would panic")
	}
}

// TestSharedSpecsDifferWhereTheRulesLook: pods share a spec only when
// everything the rules read of it is equal; one that differs only in
// hostPID, hostNetwork, an added capability, privileged, a port or a
// sidecar's restart policy gets its own.
func TestSharedSpecsDifferWhereTheRulesLook(t *testing.T) {
	transform := podview.NewTransform()
	always := corev1.ContainerRestartPolicyAlways
	base := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}}}},
				InitContainers: []corev1.Container{{Name: "proxy"}},
			}}
	}
	view := func(p *corev1.Pod) *podview.Pod {
		o, err := transform(p)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*podview.Pod)
	}
	shared := view(base())
	if again := view(base()); again.TrimmedSpec != shared.TrimmedSpec {
		t.Fatal("equal pods do not share a spec: the cases below cannot tell sharing apart")
	}
	privileged := true
	for name, change := range map[string]func(*corev1.Pod){
		"hostPID":     func(p *corev1.Pod) { p.Spec.HostPID = true },
		"hostNetwork": func(p *corev1.Pod) { p.Spec.HostNetwork = true },
		"capability": func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_PTRACE"}
		},
		"privileged":      func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = &privileged },
		"port":            func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 15000 },
		"hostPort":        func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 8080 },
		"sidecar restart": func(p *corev1.Pod) { p.Spec.InitContainers[0].RestartPolicy = &always },
	} {
		p := base()
		change(p)
		if v := view(p); v.TrimmedSpec == shared.TrimmedSpec {
			t.Errorf("%s: a pod that differs in it shares the spec of one that does not", name)
		}
	}
}
