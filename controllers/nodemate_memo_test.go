package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestNodeMateMemoKeepsOnlyWhatItWasFoundFrom: the kept node-mates are
// given back for the same pods in any order at the same version, and not
// once a pod moved, stopped running, or the version was bumped.
func TestNodeMateMemoKeepsOnlyWhatItWasFoundFrom(t *testing.T) {
	pod := func(name, node string, phase corev1.PodPhase) *podview.Pod {
		return podview.Of(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}})
	}
	m := newNodeMateMemo()
	ref := rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: "mesh"}
	a, b := pod("a", "n1", corev1.PodRunning), pod("b", "n2", corev1.PodRunning)
	mates := []v1alpha1.NodeMate{{Namespace: "tools", Name: "debug", Node: "n1"}}
	m.put(ref, m.version.Load(), m.digest([]*podview.Pod{a, b}), mates)

	if got, ok := m.get(ref, m.version.Load(), m.digest([]*podview.Pod{b, a})); !ok || len(got) != 1 {
		t.Fatalf("same pods, other order: want the kept node-mates, got %v %v", got, ok)
	}
	for name, pods := range map[string][]*podview.Pod{
		"a pod moved":         {pod("a", "n3", corev1.PodRunning), b},
		"a pod finished":      {pod("a", "n1", corev1.PodSucceeded), b},
		"a pod left":          {a},
		"another pod instead": {a, pod("c", "n2", corev1.PodRunning)},
	} {
		if _, ok := m.get(ref, m.version.Load(), m.digest(pods)); ok {
			t.Errorf("%s: the kept node-mates were given back", name)
		}
	}
	m.version.Add(1)
	if _, ok := m.get(ref, m.version.Load(), m.digest([]*podview.Pod{a, b})); ok {
		t.Error("a node-mate watch event since: the kept node-mates were given back")
	}
}
