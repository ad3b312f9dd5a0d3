package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/loopguard/loopguard/internal/metrics"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// The runtime controllers, one per policy kind, name themselves in logs
// and metrics with these.
const (
	LoopbackServiceRuntimeControllerName        = "loopbackservice-runtime"
	ClusterLoopbackServiceRuntimeControllerName = "clusterloopbackservice-runtime"
)

// RuntimeReconciler keeps the runtime view of the policies of one kind:
// what the node agents' NodeBindReports say of the selected running pods
// (listeners beyond loopback, unexpected clients of protected ports), in
// status.runtime and the RuntimeVerified condition, with a Warning Event
// per new finding and the runtime gauges. It writes nothing else of a
// policy's status. The policy reconcilers compute the same view (runtimeOf)
// in each reconcile and write it with the rest of status, Compliant
// summarizing RuntimeVerified; this controller leaves a generation the
// policy reconciler has not written yet to that write (one status write
// per new policy, not two) and is brought back by it (statusObserved),
// then writes only what changed since: a report or a pod between two
// reconciles of the policy.
type RuntimeReconciler struct {
	client        client.Client
	reader        client.Reader
	recorder      events.EventRecorder
	auditInterval time.Duration
	now           func() time.Time
	kind          string
}

// +kubebuilder:rbac:groups=loopguard.io,resources=loopbackservices;clusterloopbackservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=loopguard.io,resources=loopbackservices/status;clusterloopbackservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=loopguard.io,resources=nodebindreports,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile implements reconcile.Reconciler for one policy's runtime view.
func (r *RuntimeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, reterr error) {
	obj := r.newPolicy()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.Policies.ForgetRuntime(r.metricKey(req.Namespace, req.Name))
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get %s: %w", r.kind, err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	if obj.PolicyStatus().ObservedGeneration != obj.GetGeneration() {
		// The policy reconciler's first write of this generation carries
		// the runtime view and brings this reconcile back.
		return ctrl.Result{}, nil
	}
	before := obj.DeepCopyObject().(policyObject)
	st, generation := obj.PolicyStatus(), obj.GetGeneration()
	// One status patch, whatever happened; a failed read keeps the last
	// good view.
	defer func() {
		if reterr != nil {
			keepOrUnknown(st, generation, v1alpha1.ConditionRuntimeVerified, reterr)
		}
		res, reterr = r.patchStatus(ctx, obj, before, res, reterr)
	}()

	p, err := compilePolicy(obj)
	if err != nil {
		setRuntimeVerifiedCondition(st, generation, err, nil)
		return ctrl.Result{RequeueAfter: r.auditInterval}, nil
	}
	rt, err := r.observe(ctx, obj, p)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to read the runtime findings: %w", err)
	}
	st.Runtime = rt
	setRuntimeVerifiedCondition(st, generation, nil, rt)
	recordRuntimeMetrics(r.metricKey(obj.GetNamespace(), obj.GetName()), rt)
	// Selected pods that no report lists yet are counted again here.
	return ctrl.Result{RequeueAfter: r.auditInterval}, nil
}

// patchStatus writes status when it semantically changed, under the
// optimistic lock (the policy reconciler writes the same object), then
// announces the findings new since the status read.
func (r *RuntimeReconciler) patchStatus(ctx context.Context, obj, before policyObject, res ctrl.Result, reterr error) (ctrl.Result, error) {
	if !equality.Semantic.DeepEqual(*before.PolicyStatus(), *obj.PolicyStatus()) {
		if err := r.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			switch {
			case apierrors.IsConflict(err) && reterr == nil:
				ctrl.LoggerFrom(ctx).V(1).Info("the cached policy is older than its status: reconciling again once the cache caught up")
				return ctrl.Result{RequeueAfter: staleCacheRetry}, nil
			case apierrors.IsNotFound(err):
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("failed to patch status: %w", err)
		}
	}
	announceRuntime(r.recorder, obj, before.PolicyStatus().Runtime, obj.PolicyStatus().Runtime)
	return res, reterr
}

// observe reads the reports of the nodes of the running pods p selects in
// the namespaces it applies in (not terminating), each node once.
func (r *RuntimeReconciler) observe(ctx context.Context, obj policyObject, p *rules.Policy) (*v1alpha1.RuntimeStatus, error) {
	nss, err := policyNamespaces(ctx, r.reader, obj, p)
	if err != nil {
		return nil, err
	}
	var selected []*podview.Pod
	for _, ns := range nss {
		if ns.terminating {
			continue
		}
		pods, err := selectedPods(ctx, r.reader, p, ns.name)
		if err != nil {
			return nil, err
		}
		selected = append(selected, pods...)
	}
	return runtimeOf(ctx, r.reader, r.now(), p, obj.PolicySpec().Ports, selected)
}

// selectedPods lists the pods of a namespace that p selects and that are
// not being deleted, from the cache.
func selectedPods(ctx context.Context, reader client.Reader, p *rules.Policy, namespace string) ([]*podview.Pod, error) {
	pods, err := clusterindex.PodsInNamespace(ctx, reader, namespace)
	if err != nil {
		return nil, err
	}
	var out []*podview.Pod
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && p.Selector.Matches(labels.Set(pod.Labels)) {
			out = append(out, pod)
		}
	}
	return out, nil
}

func (r *RuntimeReconciler) newPolicy() policyObject {
	if r.kind == rules.KindClusterLoopbackService {
		return &v1alpha1.ClusterLoopbackService{}
	}
	return &v1alpha1.LoopbackService{}
}

func (r *RuntimeReconciler) metricKey(namespace, name string) metrics.PolicyKey {
	return metrics.PolicyKey{Kind: r.kind, Namespace: namespace, Name: name}
}

// statusObserved passes a policy's status writes that record a new
// generation (status.observedGeneration), the policy reconciler's first
// write of a spec, which the runtime controller waits for.
func statusObserved() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(policyObject)
		n, ok2 := e.ObjectNew.(policyObject)
		return ok1 && ok2 && o.PolicyStatus().ObservedGeneration != n.PolicyStatus().ObservedGeneration
	}}
}

// setupRuntime registers the runtime controller of each policy kind. It
// is reconciled by: the policy's spec (generation) and the policy
// reconciler's first status write of it, the runtime events of
// the NodeBindReport controller (pods whose findings changed, a report
// gone stale), the pods it selects (scheduled, running, gone), and the
// namespaces (selected, terminating): a namespace maps to its own
// LoopbackServices, and through clbsOfNamespace to the
// ClusterLoopbackServices.
func setupRuntime(mgr ctrl.Manager, opts Options, rt *runtimeEvents, clbsOfNamespace handler.MapFunc) error {
	lbsOfNamespace := func(ctx context.Context, ns client.Object) []reconcile.Request {
		return loopbackServicesIn(ctx, mgr.GetCache(), ns.GetName())
	}
	for _, c := range []struct {
		name, kind  string
		policy      client.Object
		events      chan event.GenericEvent
		ofNamespace handler.MapFunc
	}{
		{LoopbackServiceRuntimeControllerName, rules.KindLoopbackService, &v1alpha1.LoopbackService{}, rt.lbs, lbsOfNamespace},
		{ClusterLoopbackServiceRuntimeControllerName, rules.KindClusterLoopbackService, &v1alpha1.ClusterLoopbackService{}, rt.clbs, clbsOfNamespace},
	} {
		r := &RuntimeReconciler{
			client: mgr.GetClient(), reader: mgr.GetCache(), recorder: mgr.GetEventRecorder("loopguard"),
			auditInterval: opts.AuditInterval, now: time.Now, kind: c.kind,
		}
		err := ctrl.NewControllerManagedBy(mgr).Named(c.name).
			For(c.policy, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, statusObserved()))).
			Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(policiesSelectingPod(opts.Index, c.kind)), builder.WithPredicates(runtimeRelevantChange())).
			Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(c.ofNamespace), builder.WithPredicates(relevantChange())).
			WatchesRawSource(runtimeSource(c.events, policiesOfReport(mgr.GetCache(), opts.Index, c.kind))).
			Complete(r)
		if err != nil {
			return fmt.Errorf("failed to set up %s controller: %w", c.name, err)
		}
	}
	return nil
}
