// Package controllers holds loopguard's reconcilers: they keep a
// NetworkPolicy per policy, audit what already exists with the same rules
// as the webhook, and report it in status, Events and metrics.
package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	anpv1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// Options configure the controllers.
type Options struct {
	// AuditInterval is the period of the full re-audit of every policy.
	AuditInterval time.Duration
	// Index is the webhook's policy index, which the hostNetwork report
	// reads instead of listing policies.
	Index *policyindex.Index
	// Registration, when set, is the webhook registration's view
	// (WebhookRegistration.View): each policy's status write carries the
	// Enforced condition it gives.
	Registration *RegistrationView
	// ClusterPolicyBatchPeriod folds the events of the objects a
	// ClusterLoopbackService reads in the namespaces it selects (pods,
	// Services, workloads, NetworkPolicies, other policies) into one
	// reconcile per period (batched); those its audit reads also wait for
	// its pace (pace.go). 0: neither.
	ClusterPolicyBatchPeriod time.Duration
}

// watched are the objects whose changes can change a policy's audit: the
// judged kinds of internal/kinds the audit reads (an EndpointSlice is
// mapped to the policies of the pods it lists, in any namespace:
// policiesReachedBySlice), and NetworkPolicies.
func watched() []client.Object {
	var out []client.Object
	for _, k := range kinds.Watched() {
		out = append(out, k.New())
	}
	return append(out, &networkingv1.NetworkPolicy{})
}

// Setup registers both reconcilers with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.AuditInterval <= 0 {
		opts.AuditInterval = time.Hour
	}
	// Each policy reconciler's writes are recorded, and their own watch
	// events dropped (own_writes.go).
	own := newOwnWrites()
	base := policyReconciler{
		client: own.client(mgr.GetClient()), reader: mgr.GetCache(), scheme: mgr.GetScheme(), mapper: mgr.GetRESTMapper(),
		index: opts.Index, auditInterval: opts.AuditInterval, registration: opts.Registration, now: time.Now,
		memo: newAuditMemo(), nodeMates: newNodeMateMemo(), metrics: newPolicyMetrics(metrics.Policies), specs: newSpecsWritten(),
	}
	rt := newRuntimeEvents()

	lbs := &LoopbackServiceReconciler{policyReconciler: base}
	lbs.recorder = mgr.GetEventRecorder("loopguard")
	b := ctrl.NewControllerManagedBy(mgr).Named(LoopbackServiceControllerName).
		For(&v1alpha1.LoopbackService{}, builder.WithPredicates(own.notMine())).
		Owns(&networkingv1.NetworkPolicy{}, builder.WithPredicates(own.notMine()))
	lbsOverlaps := &overlapMapper{reader: mgr.GetCache(), index: opts.Index, kind: rules.KindLoopbackService, fallback: lbs.policiesInNamespace}
	for _, o := range watched() {
		b = b.Watches(o, handler.EnqueueRequestsFromMapFunc(mapper(o, lbsOverlaps, mgr.GetCache(), opts.Index)), watchPredicates(o)...)
	}
	b = watchOverlaps(b, lbsOverlaps, true, 0)
	nmHandler, nmPred := nodeMateWatch(mgr.GetCache(), opts.Index, rules.KindLoopbackService)
	b = b.Watches(&corev1.Pod{}, base.nodeMates.bumping(nmHandler), builder.WithPredicates(nmPred))
	if err := b.Complete(lbs); err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", LoopbackServiceControllerName, err)
	}

	clbs := &ClusterLoopbackServiceReconciler{policyReconciler: base, dirty: newDirtyNamespaces()}
	if err := registerClusterPolicyNetworkPolicyIndex(mgr); err != nil {
		return err
	}
	// There are few cluster policies, and each may select any namespace.
	allPolicies := everyPolicy(mgr.GetCache(), rules.KindClusterLoopbackService)
	marked := func(f handler.MapFunc, of namespacesOf) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(clbs.dirty.marking(f, of))
	}
	// The audit's inputs are batched and paced (pace.go); other policies'
	// changes, which change what its NetworkPolicies must close, only
	// batched.
	pace := newPacer(paceFactor, paceLimit)
	batch := func(h handler.EventHandler) handler.EventHandler {
		return batchedPaced(h, opts.ClusterPolicyBatchPeriod, pace)
	}
	clbs.recorder = mgr.GetEventRecorder("loopguard")
	b = ctrl.NewControllerManagedBy(mgr).Named(ClusterLoopbackServiceControllerName).
		For(&v1alpha1.ClusterLoopbackService{}, builder.WithPredicates(own.notMine())).
		// Its NetworkPolicy changed by anyone else: the closure of that
		// namespace repairs it at once; its audit, which skips its own
		// NetworkPolicies, has nothing to learn from it.
		Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(closureOfOwner), builder.WithPredicates(own.notMine())).
		Watches(&corev1.Namespace{}, marked(allPolicies, namespaceOfObject), builder.WithPredicates(relevantChange()))
	// Drift of an AdminNetworkPolicy is repaired at once only when its API
	// exists at start; one installed later is kept by the periodic audit.
	if ok, err := adminNetworkPolicyAvailable(mgr.GetRESTMapper()); err != nil {
		return err
	} else if ok {
		b = b.Owns(&anpv1alpha1.AdminNetworkPolicy{}, builder.WithPredicates(own.notMine()))
	}
	clbsOverlaps := &overlapMapper{reader: mgr.GetCache(), index: opts.Index, kind: rules.KindClusterLoopbackService, fallback: allPolicies}
	pods := &clusterPodMapper{reader: mgr.GetCache()}
	for _, o := range watched() {
		f := mapper(o, clbsOverlaps, mgr.GetCache(), opts.Index)
		if _, ok := o.(*corev1.Pod); ok { // the watch's prototype, not a cached pod
			f = pods.mapPod
		}
		b = b.Watches(o, batch(marked(f, concerns(o, mgr.GetCache()))), watchPredicates(o)...)
	}
	b = watchClusterOverlaps(b, clbsOverlaps, clbs.dirty, opts.ClusterPolicyBatchPeriod, batch)
	nmHandler, nmPred = nodeMateWatch(mgr.GetCache(), opts.Index, rules.KindClusterLoopbackService)
	b = b.Watches(&corev1.Pod{}, base.nodeMates.bumping(batch(nmHandler)), builder.WithPredicates(nmPred))
	if err := b.Complete(pace.Reconciler(clbs, clusterPolicyGone(mgr.GetCache()))); err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", ClusterLoopbackServiceControllerName, err)
	}
	if opts.Index == nil {
		return fmt.Errorf("controllers.Options.Index is required")
	}
	if err := setupHostNetwork(mgr, opts.Index, rt.hostNetwork); err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", HostNetworkControllerName, err)
	}
	if err := setupPodsGone(mgr); err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", PodsGoneControllerName, err)
	}
	if err := setupNodeBindReports(mgr, rt); err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", NodeBindReportControllerName, err)
	}
	if err := setupRuntime(mgr, opts, rt, allPolicies); err != nil {
		return err
	}
	if err := setupOpenReports(mgr, opts.Index, opts.AuditInterval); err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", OpenReportsControllerName, err)
	}
	return nil
}

// mapper maps a watched object to the policies of m.kind whose audit it
// can change. A pod can only change the audit of the policies that select
// it (with its old or its new labels: controller-runtime maps both sides
// of an update), which the webhook's policy index answers without a list:
// at 1,000 policies in a namespace, mapping every pod event to all of them
// kept the controllers busy with full audits. A NetworkPolicy loopguard
// manages goes to the policies overlapping its owner
// (overlapMapper.networkPolicyChanged); an EndpointSlice to the policies
// that select the pods it lists, whatever their namespace; other kinds
// (Services, which may reach any policy's pods; workloads; any other
// NetworkPolicy) go to every candidate policy through m.fallback. o is
// the watch's prototype (watched): it names the kind, never a cached pod.
func mapper(o client.Object, m *overlapMapper, reader client.Reader, index *policyindex.Index) handler.MapFunc {
	switch o.(type) {
	case *corev1.Pod: // not a cached pod: the prototype
		if index != nil {
			return policiesSelectingPod(index, m.kind)
		}
	case *discoveryv1.EndpointSlice:
		if index != nil {
			return policiesReachedBySlice(reader, index, m.kind, everyPolicy(reader, m.kind))
		}
	case *corev1.Service:
		if index != nil {
			return policiesOfService(reader, index, m.kind, m.fallback, everyPolicy(reader, m.kind))
		}
	case *networkingv1.NetworkPolicy:
		return m.networkPolicyChanged
	}
	return m.fallback
}

// concerns says which namespaces' audits a change of a watched object of
// o's kind concerns (dirty.go).
func concerns(o client.Object, reader client.Reader) namespacesOf {
	switch o.(type) {
	case *discoveryv1.EndpointSlice:
		return sliceNamespaces(reader)
	case *corev1.Service:
		return serviceNamespaces(reader)
	}
	return namespaceOfObject
}

// everyPolicy maps an object to every policy of kind, in every namespace:
// for when what it concerns cannot be read.
func everyPolicy(reader client.Reader, kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list client.ObjectList = &v1alpha1.LoopbackServiceList{}
		if kind == rules.KindClusterLoopbackService {
			list = &v1alpha1.ClusterLoopbackServiceList{}
		}
		if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "failed to list the policies", "kind", kind)
			return nil
		}
		var out []reconcile.Request
		_ = meta.EachListItem(list, func(obj runtime.Object) error {
			if c, ok := obj.(client.Object); ok {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(c)})
			}
			return nil
		})
		return out
	}
}

// watchPredicates drops the events that cannot change an audit.
func watchPredicates(client.Object) []builder.WatchesOption {
	return []builder.WatchesOption{builder.WithPredicates(relevantChange())}
}

// policiesSelectingPod maps a pod to the policies of kind that select it.
func policiesSelectingPod(index *policyindex.Index, kind string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		var out []reconcile.Request
		for _, p := range index.Env(o.GetNamespace()).MatchingPolicies(labels.Set(o.GetLabels())) {
			if p.Ref.Kind == kind {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Ref.Namespace, Name: p.Ref.Name}})
			}
		}
		return out
	}
}

// policiesSelectingPods returns, once each, the policies of kind that
// select any of pods, each judged with its own namespace's policies.
func policiesSelectingPods(index *policyindex.Index, kind string, pods []*podview.Pod) []reconcile.Request {
	seen := map[reconcile.Request]bool{}
	var out []reconcile.Request
	for _, p := range pods {
		for _, pol := range index.Env(p.Namespace).MatchingPolicies(labels.Set(p.Labels)) {
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pol.Ref.Namespace, Name: pol.Ref.Name}}
			if pol.Ref.Kind == kind && !seen[req] {
				seen[req] = true
				out = append(out, req)
			}
		}
	}
	return out
}

// policiesInNamespace maps an object to the LoopbackServices of its
// namespace, read through the cache's namespace index.
func (r *LoopbackServiceReconciler) policiesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	return loopbackServicesIn(ctx, r.reader, o.GetNamespace())
}

// loopbackServicesIn lists the LoopbackServices of a namespace as requests.
func loopbackServicesIn(ctx context.Context, reader client.Reader, namespace string) []reconcile.Request {
	var list v1alpha1.LoopbackServiceList
	if err := reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to map an object to the LoopbackServices of its namespace", "namespace", namespace)
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}
