package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
)

// TestClosureKeepsOneNamespace: a closure request writes the cluster
// policy's NetworkPolicy in its namespace only, closing the ports of the
// LoopbackServices there, and neither audits nor writes status; in a
// namespace the policy does not select, or with its NetworkPolicies
// Disabled, it writes nothing.
func TestClosureKeepsOneNamespace(t *testing.T) {
	ctx := context.Background()
	sel := map[string]string{"mesh": "on"}
	nsA := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: sel}}
	nsB := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: sel}}
	nsC := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh", UID: "u-mesh", Generation: 1},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: sel},
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}},
	}
	var objs []client.Object
	for _, ns := range []string{"a", "b", "c"} {
		objs = append(objs, &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "redis", UID: types.UID("u-redis-" + ns), Generation: 1},
			Spec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 6379}}}})
	}
	c := fake.NewClientBuilder().WithScheme(app.Scheme()).WithObjects(append(objs, nsA, nsB, nsC, clbs)...).
		WithStatusSubresource(&v1alpha1.ClusterLoopbackService{}).Build()
	r := &ClusterLoopbackServiceReconciler{policyReconciler: policyReconciler{
		client: c, reader: c, scheme: app.Scheme(), recorder: events.NewFakeRecorder(10),
		memo: newAuditMemo(), metrics: newPolicyMetrics(),
	}}
	np := func(ns string) (*networkingv1.NetworkPolicy, error) {
		out := &networkingv1.NetworkPolicy{}
		return out, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "loopguard-cluster-mesh"}, out)
	}

	for _, ns := range []string{"a", "c"} {
		if _, err := r.Reconcile(ctx, closureRequest("mesh", ns)); err != nil {
			t.Fatalf("closure of %s: %v", ns, err)
		}
	}
	got, err := np("a")
	if err != nil {
		t.Fatalf("no NetworkPolicy in the namespace of the closure: %v", err)
	}
	if ports := got.Spec.Ingress[0].Ports; len(ports) == 0 || ports[0].EndPort == nil || *ports[0].EndPort != 6378 {
		t.Errorf("the closure does not keep the LoopbackService's 6379 closed: %+v", ports)
	}
	for _, ns := range []string{"b", "c"} {
		if _, err := np(ns); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s: want no NetworkPolicy (not the closure's namespace, or not selected), got %v", ns, err)
		}
	}
	cur := &v1alpha1.ClusterLoopbackService{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(clbs), cur); err != nil {
		t.Fatal(err)
	}
	if len(cur.Status.Conditions) != 0 || cur.Status.ObservedGeneration != 0 {
		t.Errorf("a closure wrote status: %+v", cur.Status)
	}

	cur.Spec.NetworkPolicy = v1alpha1.NetworkPolicyDisabled
	if err := c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, closureRequest("mesh", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := np("b"); !apierrors.IsNotFound(err) {
		t.Errorf("Disabled: want no NetworkPolicy in b, got %v", err)
	}
}
