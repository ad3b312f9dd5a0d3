package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// A LoopbackService that comes, goes or changes its spec changes what the
// managed NetworkPolicies of the cluster policies overlapping it must keep
// closed, in its namespace only. That closure is a reconcile of its own:
// the request of the cluster policy with the namespace set (a cluster
// policy's own requests have none), which keeps one NetworkPolicy and
// audits nothing. Running the cluster policy's full reconcile instead (an
// audit of every namespace it selects, 6.9 s each at 150,000 pods) for
// each of 10,000 new LoopbackServices kept its reconciles back to back;
// the audit itself only waits for its pace (pace.go) now. The closure
// never waits for the pace: a tenant who slows a cluster policy's audit
// must not delay the closing of its own policy's ports there.

// closureRequest is the request that keeps clbs's NetworkPolicy in
// namespace.
func closureRequest(clbs, namespace string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: clbs}}
}

// isClosure says whether req is a closure request.
func isClosure(req reconcile.Request) bool { return req.Namespace != "" }

// closures maps a LoopbackService (old and new, on update) to the closure
// requests of the cluster policies overlapping it in its namespace.
func (m *overlapMapper) closures(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := m.policyChanged(ctx, o)
	for i := range reqs {
		reqs[i] = closureRequest(reqs[i].Name, o.GetNamespace())
	}
	return reqs
}

// reconcileClosure keeps req.Name's managed NetworkPolicy in namespace
// req.Namespace, if the policy applies and enforces there. What it cannot
// do (a policy that does not compile, a squatted name) is the full
// reconcile's to report: it runs as well, on its pace.
func (r *ClusterLoopbackServiceReconciler) reconcileClosure(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	clbs := &v1alpha1.ClusterLoopbackService{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: req.Name}, clbs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !clbs.DeletionTimestamp.IsZero() || clbs.Spec.NetworkPolicy == v1alpha1.NetworkPolicyDisabled {
		return ctrl.Result{}, nil
	}
	p, err := compilePolicy(clbs)
	if err != nil {
		return ctrl.Result{}, nil
	}
	ns := &corev1.Namespace{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: req.Namespace}, ns); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ns.DeletionTimestamp.IsZero() || !p.AppliesToNamespace(ns.Name, labels.Set(ns.Labels)) {
		return ctrl.Result{}, nil
	}
	key := types.NamespacedName{Namespace: ns.Name, Name: managedNetworkPolicyName(true, clbs.Name)}
	err = r.keepNetworkPolicy(ctx, clbs, p, portsString(p), key, labels.Set(ns.Labels), true)
	var taken *NameTakenError
	switch {
	case err == nil:
		return ctrl.Result{}, nil
	case errors.As(err, &taken):
		return ctrl.Result{}, nil // reported by the full reconcile
	case raced(err):
		return ctrl.Result{RequeueAfter: staleCacheRetry}, nil
	}
	return ctrl.Result{}, fmt.Errorf("failed to keep the closure of NetworkPolicy %s: %w", key, err)
}
