package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
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
// waits for the batch period only, never for the pace: a tenant who slows
// a cluster policy's audit must not delay the closing of its own policy's
// ports there. An edit of the cluster policy's NetworkPolicy by anyone
// else is repaired by the closure too, at once (closureOfOwner), without
// an audit, so that no tenant can run the audit back to back by editing
// it.

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
// req.Namespace as the full reconcile would there: written where the
// policy applies and enforces, removed where it no longer does (Disabled,
// or the namespace no longer selected), left alone in a terminating
// namespace. What it cannot do (a policy that does not compile, a
// squatted name) is the full reconcile's to report: it runs as well, on
// its pace.
func (r *ClusterLoopbackServiceReconciler) reconcileClosure(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	clbs := &v1alpha1.ClusterLoopbackService{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: req.Name}, clbs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !clbs.DeletionTimestamp.IsZero() {
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
	if !ns.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // kept until its pods are gone (FinalizerPodsGone)
	}
	key := types.NamespacedName{Namespace: ns.Name, Name: managedNetworkPolicyName(true, clbs.Name)}
	if clbs.Spec.NetworkPolicy == v1alpha1.NetworkPolicyDisabled || !p.AppliesToNamespace(ns.Name, labels.Set(ns.Labels)) {
		_, err = removeNetworkPolicy(ctx, r.client, clbs, key)
	} else {
		var change string
		change, err = r.keepNetworkPolicy(ctx, clbs, p, key, labels.Set(ns.Labels), true)
		changes := networkPolicyChanges{}
		changes.add(change, ns.Name)
		changes.announce(r.recorder, clbs, key.Name, portsString(p))
	}
	var taken *NameTakenError
	if err != nil && !errors.As(err, &taken) { // a squatted name is reported by the full reconcile
		return ctrl.Result{}, fmt.Errorf("failed to keep the closure of NetworkPolicy %s: %w", key, err)
	}
	// The policy or the namespace read above may be older than those the
	// full reconcile wrote or pruned this NetworkPolicy from: if that
	// came first, this write is the stale one, and its event is this
	// controller's own, which brings nothing. The cache holds the newer
	// ones by now (the full reconcile read them there): do it again.
	cur := &v1alpha1.ClusterLoopbackService{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: req.Name}, cur); err == nil && (cur.UID != clbs.UID || cur.Generation != clbs.Generation) {
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	curNS := &corev1.Namespace{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: req.Namespace}, curNS); err == nil && curNS.ResourceVersion != ns.ResourceVersion {
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// closureOfOwner maps a NetworkPolicy controlled by a ClusterLoopbackService
// to that policy's closure of its namespace. A forged controller reference
// brings at most a closure, which writes only the policy's own
// NetworkPolicy, of the name it must have.
func closureOfOwner(_ context.Context, o client.Object) []reconcile.Request {
	ref := policyController(o)
	if ref == nil || ref.Kind != rules.KindClusterLoopbackService {
		return nil
	}
	return []reconcile.Request{closureRequest(ref.Name, o.GetNamespace())}
}
