package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// TestRelevantPodChanges: a pod update passes when it can change an audit
// (labels, spec, the phase and IPs that decide which addresses are the
// pod's) and is dropped when only the rest of its status moved.
func TestRelevantPodChanges(t *testing.T) {
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart", Labels: map[string]string{"app": "cart"}},
			Spec:       corev1.PodSpec{NodeName: "node-a"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		want   bool
	}{
		{"labels", func(p *corev1.Pod) { p.Labels["app"] = "moved" }, true},
		{"spec", func(p *corev1.Pod) { p.Spec.NodeName = "node-b" }, true},
		{"pod IP", func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.2" }, true},
		{"phase (a finished pod's IPs are no longer its own)", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, true},
		{"second IP", func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00::1"}) }, true},
		{"readiness only", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, n := base(), base()
			tc.change(n)
			if got := relevantChange().Update(event.UpdateEvent{ObjectOld: o, ObjectNew: n}); got != tc.want {
				t.Errorf("relevantChange = %v, want %v", got, tc.want)
			}
		})
	}
}
