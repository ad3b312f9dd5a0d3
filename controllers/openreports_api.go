package controllers

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// reportsAPIPoll is how often the manager looks whether an OpenReports
// kind is served: once installed, the reports appear within it.
const reportsAPIPoll = 30 * time.Second

// reportsAPI tells a report controller whether its kind (Report,
// ClusterReport) is served, from one look at the API's discovery per
// reportsAPIPoll, not one per reconcile: on every miss controller-runtime's
// RESTMapper asks discovery again and rebuilds its mapping (the hostNetwork
// controller did, for each of 5,000 nodes' reconciles, without OpenReports
// installed: a discovery request each, and 11% of the manager's
// allocations). When the kind appears, it sends an event that reconciles
// every report, so a cluster that installs the CRDs after loopguard gets
// its reports without waiting for a change. It is a manager Runnable;
// every replica runs it.
type reportsAPI struct {
	mapper meta.RESTMapper
	kind   schema.GroupKind
	served atomic.Bool
	appear chan event.GenericEvent
}

func newReportsAPI(mapper meta.RESTMapper, kind schema.GroupKind) *reportsAPI {
	return &reportsAPI{mapper: mapper, kind: kind, appear: make(chan event.GenericEvent, 1)}
}

// startReportsAPI looks once, before any reconcile, and adds the poller
// to mgr.
func startReportsAPI(mgr ctrl.Manager, kind schema.GroupKind) (*reportsAPI, error) {
	a := newReportsAPI(mgr.GetRESTMapper(), kind)
	a.check(context.Background())
	if err := mgr.Add(a); err != nil {
		return nil, fmt.Errorf("failed to add the look for the OpenReports %s kind: %w", kind.Kind, err)
	}
	return a, nil
}

// check looks once and reports whether the kind has just appeared.
func (a *reportsAPI) check(ctx context.Context) bool {
	_, err := a.mapper.RESTMapping(a.kind, openreportsv1alpha1.GroupVersion.Version)
	switch {
	case err == nil:
		return !a.served.Swap(true)
	case meta.IsNoMatchError(err):
		a.served.Store(false)
	default:
		ctrl.LoggerFrom(ctx).Error(err, "failed to look up an OpenReports kind", "kind", a.kind.Kind)
	}
	return false
}

// Start implements manager.Runnable. The first look is setupOpenReports',
// before any reconcile.
func (a *reportsAPI) Start(ctx context.Context) error {
	t := time.NewTicker(reportsAPIPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if a.check(ctx) {
				select {
				case a.appear <- event.GenericEvent{Object: &corev1.Namespace{}}:
				default: // one pending is enough
				}
			}
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the
// controller's replicas each need to know.
func (a *reportsAPI) NeedLeaderElection() bool { return false }

// everyNamespace maps the kind's appearance to every namespace where a
// policy applies (one list of the cache, once).
func (r *OpenReportsReconciler) everyNamespace(ctx context.Context, _ client.Object) []reconcile.Request {
	var list corev1.NamespaceList
	// Read only: no deep copy of every namespace on each event.
	if err := r.reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to list namespaces")
		return nil
	}
	var out []reconcile.Request
	for _, ns := range list.Items {
		if !r.index.Env(ns.Name).Empty() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ns.Name}})
		}
	}
	return out
}
