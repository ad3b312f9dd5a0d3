package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/podview"
)

// PodsGoneControllerName names the controller in logs and metrics.
const PodsGoneControllerName = "networkpolicy-pods-gone"

// podsGoneRecheck bounds how long a held NetworkPolicy waits for the next
// look when no pod event arrives (a missed watch event must not keep a
// namespace terminating forever).
const podsGoneRecheck = 30 * time.Second

// PodsGoneReconciler releases the loopguard.io/pods-gone finalizer of a
// managed NetworkPolicy that is being deleted. Outside a terminating
// namespace the deletion is intended (policy deleted, networkPolicy:
// Disabled, namespace no longer selected, a user's kubectl delete that the
// policy controller then repairs) and the finalizer goes at once. In a
// terminating namespace it goes only when no pod the NetworkPolicy selects
// still runs, so the protected ports stay blocked to the end
// (CVE-2024-7598).
type PodsGoneReconciler struct {
	client client.Client
	reader client.Reader
}

// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=get;list;watch

// Reconcile implements reconcile.Reconciler.
func (r *PodsGoneReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	np := &networkingv1.NetworkPolicy{}
	if err := r.reader.Get(ctx, req.NamespacedName, np); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if np.DeletionTimestamp.IsZero() || !controllerutil.ContainsFinalizer(np, netpol.FinalizerPodsGone) {
		return ctrl.Result{}, nil
	}
	terminating, err := r.namespaceTerminating(ctx, np.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	if terminating {
		running, err := r.runningPods(ctx, np)
		if err != nil {
			return ctrl.Result{}, err
		}
		if running > 0 {
			log.V(1).Info("holding NetworkPolicy until its pods are gone", "networkPolicy", req.NamespacedName, "runningPods", running)
			return ctrl.Result{RequeueAfter: podsGoneRecheck}, nil
		}
	}
	before := np.DeepCopy()
	controllerutil.RemoveFinalizer(np, netpol.FinalizerPodsGone)
	if err := r.client.Patch(ctx, np, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to remove finalizer %s from NetworkPolicy %s: %w", netpol.FinalizerPodsGone, req.NamespacedName, err)
	}
	log.Info("released NetworkPolicy", "networkPolicy", req.NamespacedName, "namespaceTerminating", terminating)
	return ctrl.Result{}, nil
}

// namespaceTerminating reports whether the namespace is being deleted (or
// already gone).
func (r *PodsGoneReconciler) namespaceTerminating(ctx context.Context, name string) (bool, error) {
	ns := &corev1.Namespace{}
	if err := r.reader.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("failed to get namespace %s: %w", name, err)
	}
	return !ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating, nil
}

// runningPods counts the pods the NetworkPolicy selects that have not
// finished. A pod with a deletionTimestamp still runs (its grace period,
// its preStop hook) and still listens, so it counts.
func (r *PodsGoneReconciler) runningPods(ctx context.Context, np *networkingv1.NetworkPolicy) (int, error) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		// A selector the API server accepted always converts; if not, hold
		// rather than open.
		return 1, fmt.Errorf("failed to read the podSelector of NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
	}
	pods, err := clusterindex.PodsMatching(ctx, r.reader, np.Namespace, sel)
	if err != nil {
		return 0, fmt.Errorf("failed to count the running pods of NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
	}
	n := 0
	for _, p := range pods {
		if p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed {
			n++
		}
	}
	return n, nil
}

// heldNetworkPolicies maps a pod event to the managed NetworkPolicies of
// its namespace that are being deleted, the only ones that wait for pods.
func (r *PodsGoneReconciler) heldNetworkPolicies(ctx context.Context, o client.Object) []reconcile.Request {
	var nps networkingv1.NetworkPolicyList
	if err := r.reader.List(ctx, &nps, client.InNamespace(o.GetNamespace()), client.MatchingLabels{netpol.LabelManagedBy: netpol.ManagedBy}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to map pod to held NetworkPolicies", "pod", client.ObjectKeyFromObject(o))
		return nil
	}
	var out []reconcile.Request
	for i := range nps.Items {
		if !nps.Items[i].DeletionTimestamp.IsZero() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&nps.Items[i])})
		}
	}
	return out
}

// podGoneOrDone passes the pod events that can release a NetworkPolicy:
// a pod deleted, or one that finished.
func podGoneOrDone() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := podview.From(e.ObjectOld)
			n, ok2 := podview.From(e.ObjectNew)
			return ok1 && ok2 && o.Phase != n.Phase
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// managedAndHeld passes managed NetworkPolicies that carry the finalizer.
func managedAndHeld() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[netpol.LabelManagedBy] == netpol.ManagedBy && controllerutil.ContainsFinalizer(o, netpol.FinalizerPodsGone)
	})
}

func setupPodsGone(mgr ctrl.Manager) error {
	r := &PodsGoneReconciler{client: mgr.GetClient(), reader: mgr.GetCache()}
	return ctrl.NewControllerManagedBy(mgr).Named(PodsGoneControllerName).
		For(&networkingv1.NetworkPolicy{}, builder.WithPredicates(managedAndHeld())).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.heldNetworkPolicies), builder.WithPredicates(podGoneOrDone())).
		Complete(r)
}
