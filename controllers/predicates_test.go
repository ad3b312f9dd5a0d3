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
// finalizer (phase). Each case runs on the cache's podview.Pods as well
// as on corev1.Pods.
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
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		want   want
	}{
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "moved"} }, want{true, true, false}},
		{"node", func(p *corev1.Pod) { p.Spec.NodeName = "node-b" }, want{true, true, false}},
		{"container", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "app:2" }, want{true, false, false}},
		{"pod IP", func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.2" }, want{true, false, false}},
		{"phase (a finished pod's IPs are no longer its own)", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, want{true, true, true}},
		{"second IP", func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00::1"}) }, want{true, false, false}},
		{"deletion", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }, want{true, true, false}},
		{"readiness only", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }, want{false, false, false}},
	} {
		o, n := base(), base()
		tc.change(n)
		for _, form := range []struct {
			name     string
			old, cur client.Object
		}{
			{"corev1", o, n},
			{"podview", podview.Of(o), podview.Of(n)},
		} {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) {
				e := event.UpdateEvent{ObjectOld: form.old, ObjectNew: form.cur}
				got := want{relevantChange().Update(e), runtimeRelevantChange().Update(e), podGoneOrDone().Update(e)}
				if got != tc.want {
					t.Errorf("relevantChange, runtimeRelevantChange, podGoneOrDone = %+v, want %+v", got, tc.want)
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
