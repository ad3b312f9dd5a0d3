package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
)

// TestClusterPodMapperReadsTheCachesLabels: a pod maps to the cluster
// policies that select it in its namespace as labelled now, and a
// policy's new spec is compiled again.
func TestClusterPodMapperReadsTheCachesLabels(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"mesh": "on"}}}
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh", UID: "u-mesh", Generation: 1},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "on"}},
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}},
	}
	c := fake.NewClientBuilder().WithScheme(app.Scheme()).WithObjects(ns, clbs).Build()
	m := &clusterPodMapper{reader: c}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p", Labels: map[string]string{"app": "cart"}}}
	mapped := func() int { return len(m.mapPod(ctx, pod)) }
	if n := mapped(); n != 1 {
		t.Fatalf("a selected pod mapped to %d policies, want 1", n)
	}
	ns.Labels = nil
	if err := c.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if n := mapped(); n != 0 {
		t.Errorf("a pod of a namespace labelled out mapped to %d policies, want 0", n)
	}
	ns.Labels = map[string]string{"mesh": "on"}
	if err := c.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(clbs), clbs); err != nil {
		t.Fatal(err)
	}
	clbs.Spec.PodSelector.MatchLabels = map[string]string{"app": "other"}
	clbs.Generation = 2
	if err := c.Update(ctx, clbs); err != nil {
		t.Fatal(err)
	}
	if n := mapped(); n != 0 {
		t.Errorf("after the policy's selector changed, the pod mapped to %d policies, want 0", n)
	}
}
