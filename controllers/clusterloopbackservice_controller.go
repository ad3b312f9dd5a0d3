package controllers

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// ClusterLoopbackServiceControllerName names the controller in logs and
// metrics.
const ClusterLoopbackServiceControllerName = "clusterloopbackservice"

// ClusterLoopbackServiceReconciler keeps a managed NetworkPolicy in every
// namespace a ClusterLoopbackService selects, removes it from namespaces it
// no longer selects, and audits them all.
type ClusterLoopbackServiceReconciler struct {
	policyReconciler
	// dirty are the namespaces each policy's events marked (dirty.go);
	// nil: every reconcile reads every namespace.
	dirty *dirtyNamespaces
}

// +kubebuilder:rbac:groups=loopguard.io,resources=clusterloopbackservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=loopguard.io,resources=clusterloopbackservices/status,verbs=get;update;patch

// Reconcile implements reconcile.Reconciler.
func (r *ClusterLoopbackServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if isClosure(req) {
		return r.reconcileClosure(ctx, req)
	}
	clbs := &v1alpha1.ClusterLoopbackService{}
	if err := r.client.Get(ctx, req.NamespacedName, clbs); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: req.Name})
			if r.dirty != nil {
				r.dirty.forget(req.Name)
			}
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get ClusterLoopbackService: %w", err)
	}
	if !clbs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	s := newPolicyScope(ctx, clbs)
	if r.dirty == nil {
		return r.reconcile(ctx, s, r.phases())
	}
	all, marked := r.dirty.take(req.Name, r.now(), r.auditInterval)
	if !all {
		s.gather = func(ns string) bool {
			if marked[ns] {
				return true
			}
			_, ok := r.memo.cached(s.compiled, ns) // compiled before any namespace is read
			return !ok
		}
	}
	res, err := r.reconcile(ctx, s, r.phases())
	// A namespace that failed is read again, whether it was marked or
	// read for want of an audit (its audit may be kept while its
	// NetworkPolicy is not); a reconcile that failed leaves every mark.
	again := map[string]bool{}
	for _, ns := range s.failedNamespaces() {
		again[ns] = true
	}
	if err != nil {
		maps.Copy(again, marked)
		r.dirty.putBack(req.Name, all, again)
	} else if len(again) > 0 {
		r.dirty.putBack(req.Name, false, again)
	}
	return res, err
}

// phases are the full reconcile's phases.
func (r *ClusterLoopbackServiceReconciler) phases() []phase {
	return []phase{
		{"compile the policy", reconcileCompile},
		{"select its namespaces", r.reconcileNamespaces},
		{"prune the NetworkPolicies of namespaces no longer selected", r.reconcilePrune},
		{"reconcile the AdminNetworkPolicy", r.reconcileAdmin},
		{"keep the managed NetworkPolicies", r.reconcileNetworkPolicies},
		{"observe the selected namespaces", r.reconcileObserve},
	}
}

// +kubebuilder:rbac:groups=policy.networking.k8s.io,resources=adminnetworkpolicies,verbs=get;list;watch;create;update;patch;delete

// reconcileAdmin is the AdminNetworkPolicy phase: it keeps the
// AdminNetworkPolicy of an Admin-mode policy, or removes the one loopguard
// made when the mode changed, and records what status should report.
func (r *ClusterLoopbackServiceReconciler) reconcileAdmin(ctx context.Context, s *policyScope) error {
	clbs := s.policy.(*v1alpha1.ClusterLoopbackService)
	available, err := adminNetworkPolicyAvailable(r.mapper)
	if err != nil {
		return err
	}
	if clbs.Spec.NetworkPolicy != v1alpha1.NetworkPolicyAdmin {
		if !available {
			return nil
		}
		removed, err := removeAdminNetworkPolicy(ctx, r.client, clbs)
		if removed {
			r.recorder.Eventf(clbs, nil, corev1.EventTypeNormal, "AdminNetworkPolicyRemoved", "Delete", "removed AdminNetworkPolicy %s: spec.networkPolicy is %s", managedAdminNetworkPolicyName(clbs.Name), clbs.Spec.NetworkPolicy)
		}
		return err
	}
	if !available {
		s.adminErr = errNoAdminNetworkPolicyAPI
		return nil
	}
	res, err := ensureAdminNetworkPolicy(ctx, r.client, r.scheme, clbs, s.compiled)
	if err != nil {
		return err
	}
	name := managedAdminNetworkPolicyName(clbs.Name)
	switch res {
	case controllerutil.OperationResultCreated:
		r.recorder.Eventf(clbs, nil, corev1.EventTypeNormal, "AdminNetworkPolicyCreated", "Apply", "created AdminNetworkPolicy %s to deny every pod's traffic to %s", name, s.protected)
	case controllerutil.OperationResultUpdated:
		r.recorder.Eventf(clbs, nil, corev1.EventTypeWarning, "AdminNetworkPolicyRepaired", "Apply", "AdminNetworkPolicy %s had drifted from what the policy requires and was restored", name)
	}
	s.adminNetworkPolicy = name
	return nil
}

// reconcilePrune is the prune phase: it deletes the managed
// NetworkPolicies of namespaces the policy no longer selects.
func (r *ClusterLoopbackServiceReconciler) reconcilePrune(ctx context.Context, s *policyScope) error {
	clbs := s.policy.(*v1alpha1.ClusterLoopbackService)
	in := map[string]bool{}
	for _, ns := range s.inScope {
		in[ns.name] = true
	}
	nps, err := clusterPolicyNetworkPolicies(ctx, r.reader, clbs)
	if err != nil {
		return err
	}
	for i := range nps {
		np := &nps[i]
		if in[np.Namespace] {
			continue
		}
		if _, err := removeNetworkPolicy(ctx, r.client, clbs, client.ObjectKeyFromObject(np)); err != nil {
			return err
		}
	}
	return nil
}

// clusterPolicyGone tells the pacer that a cluster policy is deleted, from
// the cache, and that a closure request (closure.go), which is never
// paced, keeps nothing.
func clusterPolicyGone(c client.Reader) func(context.Context, ctrl.Request) bool {
	return func(ctx context.Context, req ctrl.Request) bool {
		return isClosure(req) || apierrors.IsNotFound(c.Get(ctx, req.NamespacedName, &v1alpha1.ClusterLoopbackService{}))
	}
}
