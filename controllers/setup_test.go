package controllers

import (
	"context"
	"slices"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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

// TestNetworkPolicyEvents: loopguard's own NetworkPolicy, recognised by
// its controller's UID and its name, reaches only the policies that may
// overlap its owner (its owner gets it through Owns()); any other
// NetworkPolicy, with loopguard's label or a forged owner, reaches every
// policy of the namespace, so conflict detection sees it.
func TestNetworkPolicyEvents(t *testing.T) {
	lbs := func(name string, sel map[string]string) *v1alpha1.LoopbackService {
		return &v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name), Generation: 1},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector: metav1.LabelSelector{MatchLabels: sel},
				Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
			},
		}
	}
	cart, web, envoy := lbs("cart", map[string]string{"app": "cart"}), lbs("web", map[string]string{"app": "web"}), lbs("envoy", nil)
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cart, web, envoy,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}).Build()
	all := func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "*"}}}
	}
	m := &overlapMapper{reader: c, kind: rules.KindLoopbackService, fallback: all}
	owned := func(name string, owner *v1alpha1.LoopbackService, uid types.UID) *networkingv1.NetworkPolicy {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop",
			Labels: map[string]string{netpol.LabelManagedBy: netpol.ManagedBy}}}
		if owner != nil {
			yes := true
			np.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "LoopbackService", Name: owner.Name, UID: uid, Controller: &yes}}
		}
		return np
	}
	for _, tc := range []struct {
		name string
		np   *networkingv1.NetworkPolicy
		want []string
	}{
		{"cart's own: to envoy, which may select cart's pods", owned("loopguard-cart", cart, cart.UID), []string{"envoy"}},
		{"envoy's own: to cart and web", owned("loopguard-envoy", envoy, envoy.UID), []string{"cart", "web"}},
		{"label only", owned("allow-all", nil, ""), []string{"*"}},
		{"forged owner, another name", owned("allow-all", cart, cart.UID), []string{"*"}},
		{"forged owner, wrong UID", owned("loopguard-cart", cart, "forged"), []string{"*"}},
		{"owner gone", owned("loopguard-db", lbs("db", nil), "uid-db"), []string{"*"}},
	} {
		var got []string
		for _, r := range m.networkPolicyChanged(context.Background(), tc.np) {
			got = append(got, r.Name)
		}
		sort.Strings(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: mapped to %v, want %v", tc.name, got, tc.want)
		}
	}
}
