package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
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
}

// +kubebuilder:rbac:groups=loopguard.io,resources=clusterloopbackservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=loopguard.io,resources=clusterloopbackservices/status,verbs=get;update;patch

// Reconcile implements reconcile.Reconciler.
func (r *ClusterLoopbackServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	clbs := &v1alpha1.ClusterLoopbackService{}
	if err := r.client.Get(ctx, req.NamespacedName, clbs); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(rules.KindClusterLoopbackService, "", req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get ClusterLoopbackService: %w", err)
	}
	if !clbs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	p, compileErr := rules.CompileCluster(clbs)
	var scope []namespaceInScope
	if compileErr == nil {
		var err error
		if scope, err = r.namespaces(ctx, p); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.pruneNetworkPolicies(ctx, clbs, scope); err != nil {
			return ctrl.Result{}, err
		}
		admin, err := r.reconcileAdmin(ctx, clbs, p)
		if err != nil {
			return ctrl.Result{}, err
		}
		return r.reconcilePolicy(ctx, clbs, p, nil, scope, true, admin)
	}
	return r.reconcilePolicy(ctx, clbs, p, compileErr, scope, true)
}

// +kubebuilder:rbac:groups=policy.networking.k8s.io,resources=adminnetworkpolicies,verbs=get;list;watch;create;update;patch;delete

// reconcileAdmin keeps the AdminNetworkPolicy of an Admin-mode policy, or
// removes the one loopguard made when the mode changed, and says what
// status should report.
func (r *ClusterLoopbackServiceReconciler) reconcileAdmin(ctx context.Context, clbs *v1alpha1.ClusterLoopbackService, p *rules.Policy) (func(*outcome), error) {
	available, err := adminNetworkPolicyAvailable(r.mapper)
	if err != nil {
		return nil, err
	}
	if clbs.Spec.NetworkPolicy != v1alpha1.NetworkPolicyAdmin {
		if !available {
			return nil, nil
		}
		removed, err := removeAdminNetworkPolicy(ctx, r.client, clbs)
		if removed {
			r.recorder.Eventf(clbs, nil, corev1.EventTypeNormal, "AdminNetworkPolicyRemoved", "Delete", "removed AdminNetworkPolicy %s: spec.networkPolicy is %s", managedAdminNetworkPolicyName(clbs.Name), clbs.Spec.NetworkPolicy)
		}
		return nil, err
	}
	if !available {
		return func(o *outcome) { o.adminErr = errNoAdminNetworkPolicyAPI }, nil
	}
	res, err := ensureAdminNetworkPolicy(ctx, r.client, r.scheme, clbs, p)
	if err != nil {
		return nil, err
	}
	name := managedAdminNetworkPolicyName(clbs.Name)
	switch res {
	case controllerutil.OperationResultCreated:
		r.recorder.Eventf(clbs, nil, corev1.EventTypeNormal, "AdminNetworkPolicyCreated", "Apply", "created AdminNetworkPolicy %s to deny every pod's traffic to %s", name, portsString(p))
	case controllerutil.OperationResultUpdated:
		r.recorder.Eventf(clbs, nil, corev1.EventTypeWarning, "AdminNetworkPolicyRepaired", "Apply", "AdminNetworkPolicy %s had drifted from what the policy requires and was restored", name)
	}
	return func(o *outcome) { o.adminNetworkPolicy = name }, nil
}

// namespaces returns the namespaces the policy selects; terminating ones
// are kept in scope so that pruning leaves their NetworkPolicy in place.
func (r *ClusterLoopbackServiceReconciler) namespaces(ctx context.Context, p *rules.Policy) ([]namespaceInScope, error) {
	var list corev1.NamespaceList
	if err := r.reader.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("failed to list namespaces: %w", err)
	}
	var out []namespaceInScope
	for _, ns := range list.Items {
		l := labels.Set(ns.Labels)
		if p.AppliesToNamespace(ns.Name, l) {
			out = append(out, namespaceInScope{name: ns.Name, labels: l, terminating: ns.DeletionTimestamp != nil})
		}
	}
	return out, nil
}

// pruneNetworkPolicies deletes managed NetworkPolicies in namespaces the
// policy no longer selects.
func (r *ClusterLoopbackServiceReconciler) pruneNetworkPolicies(ctx context.Context, clbs *v1alpha1.ClusterLoopbackService, scope []namespaceInScope) error {
	in := map[string]bool{}
	for _, ns := range scope {
		in[ns.name] = true
	}
	var nps networkingv1.NetworkPolicyList
	if err := r.reader.List(ctx, &nps, client.MatchingLabels{netpol.LabelPolicy: policyLabelValue(true, clbs.Name)}); err != nil {
		return fmt.Errorf("failed to list managed NetworkPolicies: %w", err)
	}
	for i := range nps.Items {
		np := &nps.Items[i]
		if in[np.Namespace] {
			continue
		}
		if _, err := removeNetworkPolicy(ctx, r.client, clbs, client.ObjectKeyFromObject(np)); err != nil {
			return err
		}
	}
	return nil
}
