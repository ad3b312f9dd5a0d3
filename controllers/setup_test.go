package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestPodEventsReachOnlySelectingPolicies: a pod event is mapped to the
// policies that select the pod, not to every policy of its namespace.
func TestPodEventsReachOnlySelectingPolicies(t *testing.T) {
	idx := policyindex.New()
	for _, p := range []struct{ name, app string }{{"cart", "cart"}, {"web", "web"}} {
		if err := idx.SetLoopbackService(&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: "shop", UID: types.UID(p.name), Generation: 1},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": p.app}},
				Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	idx.SetNamespaceLabels("shop", map[string]string{"kubernetes.io/metadata.name": "shop"})
	idx.MarkSynced()
	m := policiesSelectingPod(idx, rules.KindLoopbackService)
	for _, tc := range []struct {
		app  string
		want []string
	}{{"cart", []string{"cart"}}, {"web", []string{"web"}}, {"db", nil}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Labels: map[string]string{"app": tc.app}}}
		var got []string
		for _, r := range m(context.Background(), pod) {
			got = append(got, r.Name)
		}
		if len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) {
			t.Errorf("app=%s: mapped to %v, want %v", tc.app, got, tc.want)
		}
	}
	if got := policiesSelectingPod(idx, rules.KindClusterLoopbackService)(context.Background(),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{"app": "cart"}}}); len(got) != 0 {
		t.Errorf("a namespaced policy mapped for the cluster kind: %v", got)
	}
}

// TestManagedNetworkPoliciesDoNotFanOut: loopguard's own NetworkPolicies
// reach their owner through Owns(), not every policy of the namespace.
func TestManagedNetworkPoliciesDoNotFanOut(t *testing.T) {
	p := notManaged()
	managed := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{netpol.LabelManagedBy: netpol.ManagedBy}}}
	users := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-all"}}
	if p.Create(event.CreateEvent{Object: managed}) {
		t.Error("a managed NetworkPolicy passed")
	}
	if !p.Create(event.CreateEvent{Object: users}) {
		t.Error("a user's NetworkPolicy was dropped: conflicts would go unseen")
	}
}
