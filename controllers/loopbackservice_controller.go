package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// LoopbackServiceControllerName names the controller in logs and metrics.
const LoopbackServiceControllerName = "loopbackservice"

// LoopbackServiceReconciler keeps the managed NetworkPolicy of a
// LoopbackService and audits its namespace.
type LoopbackServiceReconciler struct {
	policyReconciler
}

// +kubebuilder:rbac:groups=loopguard.io,resources=loopbackservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=loopguard.io,resources=loopbackservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile implements reconcile.Reconciler.
func (r *LoopbackServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lbs := &v1alpha1.LoopbackService{}
	if err := r.client.Get(ctx, req.NamespacedName, lbs); err != nil {
		if apierrors.IsNotFound(err) {
			// The managed NetworkPolicy goes with it (ownerReference).
			r.forget(rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: req.Namespace, Name: req.Name})
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get LoopbackService: %w", err)
	}
	if !lbs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	return r.reconcile(ctx, newPolicyScope(ctx, lbs), []phase{
		{"compile the policy", reconcileCompile},
		{"read its namespace", r.reconcileNamespaces},
		{"keep the managed NetworkPolicy", r.reconcileNetworkPolicies},
		{"observe the namespace", r.reconcileObserve},
	})
}
