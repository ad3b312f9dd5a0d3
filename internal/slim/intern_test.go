package slim

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// workloadPod is a pod as the decoder gives it: every string, map and
// slice its own, even where it equals another pod's.
func workloadPod(i int, app string, controller bool) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%d", app, i), Namespace: string([]byte("shop")), GenerateName: app + "-",
			Labels: map[string]string{string([]byte("app")): app, "pod-template-hash": string([]byte("7d9f"))},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-7d9f", UID: types.UID("u-" + app),
				Controller: ptr.To(controller)}},
		},
		Spec: corev1.PodSpec{NodeName: string([]byte("node-a")), Containers: []corev1.Container{{Name: string([]byte("envoy")),
			Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPhase([]byte("Running")), PodIP: fmt.Sprintf("10.0.0.%d", i)},
	}
}

// transformed is p through the transform tr.
func transformed(t *testing.T, tr func(any) (any, error), p *corev1.Pod) *corev1.Pod {
	t.Helper()
	o, err := tr(p)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*corev1.Pod)
}

func same[T any](a, b T) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestPodTransformSharesWhatPodsHoldEqual: pods of one workload share one
// label map, owner reference list and port list; a pod whose labels,
// owner or ports differ in any field gets its own, with its values intact.
func TestPodTransformSharesWhatPodsHoldEqual(t *testing.T) {
	tr := NewPodTransform()
	get := func(p *corev1.Pod) *corev1.Pod { return transformed(t, tr, p) }
	a, b := get(workloadPod(1, "web", true)), get(workloadPod(2, "web", true))
	if !same(a.Labels, b.Labels) || !same(a.OwnerReferences, b.OwnerReferences) || !same(a.Spec.Containers[0].Ports, b.Spec.Containers[0].Ports) {
		t.Errorf("two pods of one workload do not share their labels, owners and ports")
	}
	if a.Name == b.Name || a.Status.PodIP == b.Status.PodIP {
		t.Errorf("per-pod fields were merged: %s %s", a.Name, b.Name)
	}

	other := get(workloadPod(3, "api", true))
	notOwner := get(workloadPod(4, "web", false)) // differs only in controller
	relabel := workloadPod(5, "web", true)
	relabel.Labels["pod-template-hash"] = "7d9g"
	relabelled := get(relabel)
	port := workloadPod(6, "web", true)
	port.Spec.Containers[0].Ports[0].Protocol = corev1.ProtocolUDP
	udp := get(port)
	switch {
	case same(a.Labels, other.Labels), other.Labels["app"] != "api":
		t.Errorf("another workload's labels: %v", other.Labels)
	case same(a.OwnerReferences, notOwner.OwnerReferences), *notOwner.OwnerReferences[0].Controller:
		t.Errorf("an owner reference differing in controller was shared")
	case same(a.Labels, relabelled.Labels), relabelled.Labels["pod-template-hash"] != "7d9g":
		t.Errorf("labels differing in one value were shared: %v", relabelled.Labels)
	case same(a.Spec.Containers[0].Ports, udp.Spec.Containers[0].Ports), udp.Spec.Containers[0].Ports[0].Protocol != corev1.ProtocolUDP:
		t.Errorf("ports differing in protocol were shared")
	}
	// Keys are length-prefixed: {"a=b": "c"} is not {"a": "b=c"}.
	x, y := workloadPod(7, "web", true), workloadPod(8, "web", true)
	x.Labels = map[string]string{"a=b": "c"}
	y.Labels = map[string]string{"a": "b=c"}
	if gx, gy := get(x), get(y); same(gx.Labels, gy.Labels) || gy.Labels["a"] != "b=c" {
		t.Errorf("label sets of equal concatenation were shared: %v %v", gx.Labels, gy.Labels)
	}
	if o, _ := tr(&corev1.Service{}); o == nil {
		t.Errorf("non-pods must pass through")
	}
}

// TestPodTransformSharesContainerLists: pods of one workload share one
// container list; a list differing in any field the rules read (a name,
// a port, the restart policy, privileged, an added capability, one more
// container) is its own, with its values intact.
func TestPodTransformSharesContainerLists(t *testing.T) {
	tr := NewPodTransform()
	get := func(p *corev1.Pod) *corev1.Pod { return transformed(t, tr, p) }
	a, b := get(workloadPod(1, "web", true)), get(workloadPod(2, "web", true))
	if !same(a.Spec.Containers, b.Spec.Containers) {
		t.Fatalf("two pods of one workload do not share their containers")
	}
	for name, change := range map[string]func(c *corev1.Container, p *corev1.Pod){
		"name":      func(c *corev1.Container, _ *corev1.Pod) { c.Name = "proxy" },
		"port":      func(c *corev1.Container, _ *corev1.Pod) { c.Ports[0].ContainerPort = 15001 },
		"host port": func(c *corev1.Container, _ *corev1.Pod) { c.Ports[0].HostPort = 15000 },
		"restart": func(c *corev1.Container, _ *corev1.Pod) {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		},
		"privileged": func(c *corev1.Container, _ *corev1.Pod) {
			c.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		},
		"capability": func(c *corev1.Container, _ *corev1.Pod) {
			c.SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
		},
		"one more": func(c *corev1.Container, p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side"})
		},
	} {
		p := workloadPod(3, "web", true)
		want := p.DeepCopy()
		change(&p.Spec.Containers[0], p)
		change(&want.Spec.Containers[0], want)
		got := get(p)
		trimmed, _ := Pod(want)
		if same(a.Spec.Containers, got.Spec.Containers) || !reflect.DeepEqual(got.Spec.Containers, trimmed.(*corev1.Pod).Spec.Containers) {
			t.Errorf("%s: a changed container list was shared or altered: %+v", name, got.Spec.Containers)
		}
		if again := get(func() *corev1.Pod { q := workloadPod(4, "web", true); change(&q.Spec.Containers[0], q); return q }()); !same(got.Spec.Containers, again.Spec.Containers) {
			t.Errorf("%s: two equal changed lists are not shared", name)
		}
	}
	// Init containers are shared apart from containers.
	i := workloadPod(5, "web", true)
	i.Spec.InitContainers = []corev1.Container{{Name: "envoy", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000, Protocol: corev1.ProtocolTCP}}}}
	gi := get(i)
	if !same(gi.Spec.InitContainers, gi.Spec.Containers) && !reflect.DeepEqual(gi.Spec.InitContainers, gi.Spec.Containers) {
		t.Errorf("init containers altered: %+v", gi.Spec.InitContainers)
	}
}

// TestInternerStartsOverPastItsBound: a table never grows past its bound.
func TestInternerStartsOverPastItsBound(t *testing.T) {
	in := &interner{}
	for i := range maxInternedSets + 10 {
		in.labelSet(map[string]string{"statefulset.kubernetes.io/pod-name": fmt.Sprintf("db-%d", i)})
	}
	if n := len(in.labels); n > maxInternedSets {
		t.Errorf("%d label sets held, bound %d", n, maxInternedSets)
	}
	if n := len(in.strs); n > maxInternedStrings {
		t.Errorf("%d strings held, bound %d", n, maxInternedStrings)
	}
}

// BenchmarkPodCacheLiveHeap reports the live heap a cached pod costs, with
// and without sharing: 20,000 pods of 200 workloads (100 pods each, 2
// labels, one owner, one container with one port).
func BenchmarkPodCacheLiveHeap(b *testing.B) {
	for _, tc := range []struct {
		name string
		tr   func() func(any) (any, error)
	}{{"trim-only", func() func(any) (any, error) { return Pod }}, {"trim-and-share", NewPodTransform}} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 20_000
			var perPod float64
			for range b.N {
				tr := tc.tr()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				keep := make([]any, n)
				for i := range n {
					keep[i], _ = tr(workloadPod(i, fmt.Sprintf("app%d", i%200), true))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perPod = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(keep)
			}
			b.ReportMetric(perPod, "live-B/pod")
		})
	}
}
