package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/loopguard/loopguard/internal/podview"
)

// TestRelevantPodChanges: a pod update passes when it can change an audit
// (labels, spec, the phase and IPs that decide which addresses are the
// pod's) and is dropped when only the rest of its status moved; so for
// the runtime view (labels, deletion, node, phase) and the pods-gone
// finalizer (phase). Each case runs on corev1.Pods, on podview.Pods as
// they are, and on podview.Pods through the cache's transform, which
// drops what no rule reads (an image change is then no change at all,
// a port change still is).
func TestRelevantPodChanges(t *testing.T) {
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart", Labels: map[string]string{"app": "cart"}},
			Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	type want struct{ audit, runtime, podsGone bool }
	cached := podview.NewTransform()
	viaCache := func(p *corev1.Pod) client.Object {
		o, err := cached(p.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		return o.(*podview.Pod)
	}
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		want   want
		// dropped: the change is to a field the cache does not keep.
		dropped bool
	}{
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "moved"} }, want{true, true, false}, false},
		{"node", func(p *corev1.Pod) { p.Spec.NodeName = "node-b" }, want{true, true, false}, false},
		{"container image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "app:2" }, want{true, false, false}, true},
		{"container port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 15000}}
		}, want{true, false, false}, false},
		{"hostNetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, want{true, false, false}, false},
		{"ephemeral container", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
		}, want{true, false, false}, false},
		{"pod IP", func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.2" }, want{true, false, false}, false},
		{"phase (a finished pod's IPs are no longer its own)", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, want{true, true, true}, false},
		{"second IP", func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00::1"}) }, want{true, false, false}, false},
		{"deletion", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }, want{true, true, false}, false},
		{"readiness only", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }, want{false, false, false}, false},
	} {
		o, n := base(), base()
		tc.change(n)
		for _, form := range []struct {
			name     string
			old, cur client.Object
			trimmed  bool
		}{
			{"corev1", o, n, false},
			{"podview", podview.Of(o), podview.Of(n), false},
			{"cached", viaCache(o), viaCache(n), true},
		} {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) {
				e := event.UpdateEvent{ObjectOld: form.old, ObjectNew: form.cur}
				got := want{relevantChange().Update(e), runtimeRelevantChange().Update(e), podGoneOrDone().Update(e)}
				w := tc.want
				if form.trimmed && tc.dropped {
					w = want{}
				}
				if got != w {
					t.Errorf("relevantChange, runtimeRelevantChange, podGoneOrDone = %+v, want %+v", got, w)
				}
			})
		}
	}
}

// TestPodSpecChangeWithASharedSpec: the cache shares one trimmed spec
// between the pods of a workload, without the node: a pod that moved to
// another node keeps the same TrimmedSpec pointer, and is a change; a
// pod whose status alone moved, with its spec shared, is none.
func TestPodSpecChangeWithASharedSpec(t *testing.T) {
	old := podview.Of(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	})
	for _, tc := range []struct {
		name   string
		change func(*podview.Pod)
		want   bool
	}{
		{"moved", func(p *podview.Pod) { p.NodeName = "node-b" }, true},
		{"resync", func(p *podview.Pod) { p.ResourceVersion = "2" }, false},
		{"equal spec, another pointer", func(p *podview.Pod) { s := *p.TrimmedSpec; p.TrimmedSpec = &s }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := *old
			tc.change(&cur)
			if got := specChanged(old, &cur); got != tc.want {
				t.Errorf("specChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
