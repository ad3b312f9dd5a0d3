package controllers

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/loopguard/loopguard/internal/podview"
)

// relevantChange passes creates, deletes and the updates that can change an
// audit: labels, ownership, deletion, and the spec (the generation for
// workloads, the spec itself for kinds whose generation does not move).
// Status-only updates, which are most updates, are dropped.
func relevantChange() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		if o == nil || n == nil {
			return true
		}
		if !equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences()) ||
			(o.GetDeletionTimestamp() == nil) != (n.GetDeletionTimestamp() == nil) {
			return true
		}
		return specChanged(o, n)
	}}
}

func specChanged(o, n client.Object) bool {
	switch old := o.(type) {
	case *podview.Pod, *corev1.Pod: // the cache's, or a test's
		return podChanged(o, n)
	case *corev1.Service:
		return !equality.Semantic.DeepEqual(old.Spec, n.(*corev1.Service).Spec)
	case *networkingv1.NetworkPolicy:
		return !equality.Semantic.DeepEqual(old.Spec, n.(*networkingv1.NetworkPolicy).Spec)
	case *corev1.Namespace:
		return false // labels are what matters, compared above
	case *discoveryv1.EndpointSlice:
		cur := n.(*discoveryv1.EndpointSlice)
		return !equality.Semantic.DeepEqual(old.Endpoints, cur.Endpoints) || !equality.Semantic.DeepEqual(old.Ports, cur.Ports)
	default:
		return o.GetGeneration() != n.GetGeneration()
	}
}

// podChanged reports whether a pod's spec (the trimmed spec, and the node
// it is bound to, spec.nodeName) or what decides its addresses changed:
// the phase and the IPs decide which addresses are the pod's
// (rules.PodIPs), so which slices reach it.
func podChanged(o, n client.Object) bool {
	old, okO := podview.From(o)
	cur, okN := podview.From(n)
	if !okO || !okN {
		return true
	}
	if old.TrimmedSpec != cur.TrimmedSpec && !equality.Semantic.DeepEqual(old.TrimmedSpec, cur.TrimmedSpec) {
		return true
	}
	return old.NodeName != cur.NodeName || old.PodIP != cur.PodIP || old.Phase != cur.Phase ||
		!equality.Semantic.DeepEqual(old.IPs(), cur.IPs())
}

// runtimeRelevantChange passes creates, deletes and the pod updates that
// can change a policy's runtime view: labels (selection), deletion, the
// node a pod is bound to, and its phase (only running pods are checked).
func runtimeRelevantChange() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, okO := podview.From(e.ObjectOld)
		n, okN := podview.From(e.ObjectNew)
		if !okO || !okN {
			return true
		}
		return !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
			(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
			o.NodeName != n.NodeName || o.Phase != n.Phase
	}}
}
