package controllers

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
)

// TestPolicyEventsReachOnlyTheirNodes: a LoopbackService's event (each of
// its status writes) must reach the node reports it can change, those of
// the nodes where a pod of its namespace runs beside a hostNetwork pod of
// that namespace or a pod that can enter other pods' network namespaces,
// and no other: every node with a privileged DaemonSet pod (thousands in
// a large cluster) was reached by every LoopbackService's every status
// write. A ClusterLoopbackService may select any namespace: it reaches
// every node with a hostNetwork or such pod.
func TestPolicyEventsReachOnlyTheirNodes(t *testing.T) {
	pod := func(ns, name, node string, hostNetwork, privileged bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{NodeName: node, HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "c"}}}}
		if privileged {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}
		return p
	}
	objs := []client.Object{
		pod("shop", "web-1", "n1", false, false), pod("kube-system", "cni-n1", "n1", false, true), // beside a privileged pod
		pod("kube-system", "cni-n2", "n2", false, true), // a privileged pod, nothing of shop
		pod("shop", "agent", "n3", true, false),         // shop's hostNetwork pod
		pod("shop", "web-2", "n4", false, false),        // nothing that reaches it
		pod("other", "host", "n5", true, false),         // another namespace's hostNetwork pod
	}
	r := &HostNetworkReconciler{reader: podReader(objs...)}
	nodes := func(o client.Object) []string {
		var out []string
		for _, req := range r.allNodes(context.Background(), o) {
			out = append(out, req.Name)
		}
		slices.Sort(out)
		return out
	}
	lbs := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy"}}
	if got, want := nodes(lbs), []string{"n1", "n3"}; !slices.Equal(got, want) {
		t.Errorf("LoopbackService shop/envoy reaches nodes %v, want %v", got, want)
	}
	clbs := &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: "mesh"}}
	if got, want := nodes(clbs), []string{"n1", "n2", "n3", "n5"}; !slices.Equal(got, want) {
		t.Errorf("ClusterLoopbackService mesh reaches nodes %v, want %v", got, want)
	}
}

// podReader is a fake cache of objs with the pod indexes the hostNetwork
// controller reads.
func podReader(objs ...client.Object) client.Reader {
	field := func(f func(*corev1.Pod) string) client.IndexerFunc {
		return func(o client.Object) []string {
			if v := f(o.(*corev1.Pod)); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	return fake.NewClientBuilder().WithScheme(app.Scheme()).WithObjects(objs...).
		WithIndex(&corev1.Pod{}, IndexHostNetwork, field(func(p *corev1.Pod) string {
			if p.Spec.HostNetwork {
				return "true"
			}
			return ""
		})).
		WithIndex(&corev1.Pod{}, IndexHostNetworkNode, field(func(p *corev1.Pod) string {
			if p.Spec.HostNetwork {
				return p.Spec.NodeName
			}
			return ""
		})).
		WithIndex(&corev1.Pod{}, IndexNodeMate, field(func(p *corev1.Pod) string {
			if hasNodeMateRisk(p) {
				return "true"
			}
			return ""
		})).
		WithIndex(&corev1.Pod{}, IndexNodeMateNode, field(func(p *corev1.Pod) string {
			if hasNodeMateRisk(p) {
				return p.Spec.NodeName
			}
			return ""
		})).
		WithIndex(&corev1.Pod{}, IndexPodNode, field(func(p *corev1.Pod) string { return p.Spec.NodeName })).
		Build()
}
