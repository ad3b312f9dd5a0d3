package controllers

import (
	"context"
	"fmt"
	"strings"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// HostNetworkControllerName names the controller in logs and metrics.
const HostNetworkControllerName = "hostnetwork"

// Pod field indexes: the node of a hostNetwork pod, and whether a pod is
// hostNetwork at all, so that the audit never lists every pod.
const (
	IndexHostNetworkNode = "loopguard.io/hostNetworkNode"
	IndexHostNetwork     = "loopguard.io/hostNetwork"
)

var clusterReportGK = schema.GroupKind{Group: openreportsv1alpha1.GroupName, Kind: "ClusterReport"}

// HostNetworkReconciler reports, per node, every hostNetwork pod: its
// ports, the policies that select it, the protected ports it declares on
// the node's network and the other hostNetwork pods that share its
// loopback. It always exports metrics, and writes an OpenReports
// ClusterReport per node when that CRD is installed.
type HostNetworkReconciler struct {
	client    client.Client
	reader    client.Reader // the cache
	apiReader client.Reader // uncached: reports are not watched
	api       *reportsAPI   // whether ClusterReport is served
	index     *policyindex.Index
	// analyses keeps each hostNetwork pod's report while its inputs hold.
	analyses *hostnet.Memo
	// The series of loopguard_hostnetwork_pod_info and
	// loopguard_node_mate_pod_info, per node.
	hostNetworkSeries, nodeMateSeries *nodeSeries
}

// +kubebuilder:rbac:groups=openreports.io,resources=clusterreports,verbs=get;create;update;delete

// Reconcile implements reconcile.Reconciler for one node (request name).
func (r *HostNetworkReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := req.Name
	ptrs, err := clusterindex.Pods(ctx, r.reader, IndexHostNetworkNode, node)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list hostNetwork pods of node %s: %w", node, err)
	}
	risky, all, err := r.nodeMateCandidates(ctx, node)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The policy index is fed by a handler of its own, which may not have
	// run yet for the event that brought this reconcile: wait until it
	// holds what the cache holds for every namespace read below. Checked
	// before reading, so that what is read is at least that new.
	read := map[string]bool{}
	for _, p := range ptrs {
		read[p.Namespace] = true
	}
	for _, p := range all {
		read[p.Namespace] = true
	}
	if ok, err := indexReflects(ctx, r.reader, r.index, read); err != nil {
		return ctrl.Result{}, err
	} else if !ok {
		ctrl.LoggerFrom(ctx).V(1).Info("the policy index is behind the cache; reading it again shortly")
		return ctrl.Result{RequeueAfter: indexLagRetry}, nil
	}
	reports := r.analyses.Analyze(node, ptrs, r.index.Env)
	var mates []hostnet.NodeMate
	if len(risky) > 0 {
		mates = hostnet.NodeMates(risky, all, protectedPod(r.index))
	}

	rows := make([][]string, 0, len(reports))
	for _, rep := range reports {
		rows = append(rows, []string{rep.Namespace, rep.Name, node, fmt.Sprint(rep.Critical())})
	}
	r.hostNetworkSeries.set(node, rows)
	r.nodeMateSeries.set(node, nodeMateRows(node, mates))
	listening, err := r.listeningHostNetworkPods(ctx, node)
	if err != nil {
		return ctrl.Result{}, err
	}
	listening = append(listening, nodeMateResults(node, mates)...)
	if err := r.writeReport(ctx, node, reports, listening); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// writeReport keeps the node's ClusterReport, writing only on change.
// failing are results that fail the report besides the hostNetwork pods':
// listeners beyond loopback, node-mates of protected pods.
func (r *HostNetworkReconciler) writeReport(ctx context.Context, node string, reports []hostnet.PodReport, failing []openreportsv1alpha1.ReportResult) error {
	if !r.api.served.Load() {
		return nil // OpenReports not installed: metrics and status only
	}
	name := "loopguard-hostnetwork-" + node
	cur := &openreportsv1alpha1.ClusterReport{}
	err := r.apiReader.Get(ctx, client.ObjectKey{Name: name}, cur)
	exists := err == nil
	if meta.IsNoMatchError(err) {
		r.api.served.Store(false) // uninstalled since the last look
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to get ClusterReport %s: %w", name, err)
	}
	if len(reports) == 0 && len(failing) == 0 {
		if exists {
			if err := r.client.Delete(ctx, cur); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("failed to delete ClusterReport %s: %w", name, err)
			}
		}
		return nil
	}
	want := desiredReport(node, reports)
	want.Results = append(want.Results, failing...)
	want.Summary.Fail += len(failing)
	if !exists {
		want.Name = name
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("failed to create ClusterReport %s: %w", name, err)
		}
		return nil
	}
	if equality.Semantic.DeepEqual(cur.Results, want.Results) && cur.Summary == want.Summary {
		return nil
	}
	cur.Source, cur.Scope, cur.Summary, cur.Results = want.Source, want.Scope, want.Summary, want.Results
	if err := r.client.Update(ctx, cur); err != nil {
		return fmt.Errorf("failed to update ClusterReport %s: %w", name, err)
	}
	return nil
}

func desiredReport(node string, reports []hostnet.PodReport) *openreportsv1alpha1.ClusterReport {
	rep := &openreportsv1alpha1.ClusterReport{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{netpol.LabelManagedBy: netpol.ManagedBy}},
		Source:     "loopguard",
		Scope:      &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node},
	}
	for _, p := range reports {
		res := openreportsv1alpha1.ReportResult{
			Source: "loopguard", Policy: "loopguard/hostnetwork", Rule: "shared-node-loopback",
			Category: "loopback", Result: "warn", Severity: "info",
			Subjects:    []corev1.ObjectReference{{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name}},
			Description: p.Summary(),
			Properties: map[string]string{
				"node": node, "ports": strings.Join(p.Ports, ","), "policies": strings.Join(p.Policies, ","),
				"protectedPorts": strings.Join(p.ProtectedPorts, ","), "nodeMates": strings.Join(p.NodeMates, ","),
			},
		}
		if p.Critical() {
			res.Result, res.Severity = "fail", "critical"
			rep.Summary.Fail++
		} else {
			rep.Summary.Warn++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep
}

// setupHostNetwork registers the pod indexes and the controller.
func setupHostNetwork(mgr ctrl.Manager, index *policyindex.Index, runtime chan event.GenericEvent) error {
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexHostNetworkNode, func(o client.Object) []string {
		if p, ok := podview.From(o); ok && p.TrimmedSpec.HostNetwork && p.NodeName != "" {
			return []string{p.NodeName}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("failed to index pods by hostNetwork node: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexHostNetwork, func(o client.Object) []string {
		if p, ok := podview.From(o); ok && p.TrimmedSpec.HostNetwork {
			return []string{"true"}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("failed to index hostNetwork pods: %w", err)
	}
	if err := registerNodeMateIndexes(mgr); err != nil {
		return err
	}
	api, err := startReportsAPI(mgr, clusterReportGK)
	if err != nil {
		return err
	}
	r := &HostNetworkReconciler{
		client: mgr.GetClient(), reader: mgr.GetCache(), apiReader: mgr.GetAPIReader(),
		api: api, index: index, analyses: hostnet.NewMemo(),
		hostNetworkSeries: newNodeSeries(metrics.HostNetworkPodInfo), nodeMateSeries: newNodeSeries(metrics.NodeMatePodInfo),
	}
	// hostNetwork pods, pods that can enter other pods' network
	// namespaces, and the protected pods they can enter.
	protected := protectedPod(index)
	reported := func(o client.Object) bool {
		p, ok := podview.From(o)
		return ok && (p.TrimmedSpec.HostNetwork || hasNodeMateRisk(p) || protected(p))
	}
	hostNetworkPods := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return reported(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return reported(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return reported(e.ObjectOld) || reported(e.ObjectNew) },
		GenericFunc: func(e event.GenericEvent) bool { return reported(e.Object) },
	}
	return ctrl.NewControllerManagedBy(mgr).Named(HostNetworkControllerName).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podNodes), builder.WithPredicates(hostNetworkPods, relevantChange())).
		// A policy's spec, not its status: a node's reconcile waits for
		// the policy index (fed by a handler of its own) to hold what the
		// cache holds, so no later event is needed to see a policy indexed.
		Watches(&v1alpha1.LoopbackService{}, handler.EnqueueRequestsFromMapFunc(r.allNodes), builder.WithPredicates(policySpecChanged)).
		Watches(&v1alpha1.ClusterLoopbackService{}, handler.EnqueueRequestsFromMapFunc(r.allNodes), builder.WithPredicates(policySpecChanged)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.allNodes), builder.WithPredicates(relevantChange())).
		WatchesRawSource(runtimeSource(runtime, hostNetworkNodeOfReport)).
		// ClusterReport served since the last look: every node's report.
		WatchesRawSource(source.Channel(r.api.appear, handler.EnqueueRequestsFromMapFunc(r.allNodes))).
		Complete(r)
}

// policySpecChanged passes a policy's creation, deletion and spec changes,
// not its status writes (one per reconcile of every policy).
var policySpecChanged = predicate.GenerationChangedPredicate{}

func isHostNetwork(o client.Object) bool {
	p, ok := podview.From(o)
	return ok && p.TrimmedSpec.HostNetwork
}

// podNodes maps a hostNetwork pod to its node. A pod that moved (unset to
// set nodeName) maps to its new node; the old request is unneeded since an
// unscheduled pod is in no node's report.
func podNodes(_ context.Context, o client.Object) []reconcile.Request {
	p, ok := podview.From(o)
	if !ok || p.NodeName == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: p.NodeName}}}
}

// allNodes maps a policy or namespace change to the nodes whose reports it
// can change, read from the cache without copies. A LoopbackService
// selects pods of its namespace only: the nodes where one of them runs and
// is hostNetwork, or runs beside a pod that can enter other pods' network
// namespaces (a privileged DaemonSet's pod is on nearly every node of a
// large cluster: each LoopbackService status write reached them all). A
// ClusterLoopbackService or a namespace: every node with a hostNetwork pod
// or such a pod.
func (r *HostNetworkReconciler) allNodes(ctx context.Context, o client.Object) []reconcile.Request {
	log := ctrl.LoggerFrom(ctx)
	seen := map[string]bool{}
	var out []reconcile.Request
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: n}})
		}
	}
	if lbs, ok := o.(*v1alpha1.LoopbackService); ok {
		pods, err := clusterindex.PodsInNamespace(ctx, r.reader, lbs.Namespace)
		if err != nil {
			log.Error(err, "failed to read the pods of the policy's namespace")
			return nil
		}
		risky := map[string]bool{}
		for _, p := range pods {
			n := p.NodeName
			if n == "" || seen[n] {
				continue
			}
			if p.TrimmedSpec.HostNetwork {
				add(n)
				continue
			}
			has, checked := risky[n]
			if !checked {
				mates, err := clusterindex.Pods(ctx, r.reader, IndexNodeMateNode, n)
				if err != nil {
					log.Error(err, "failed to read the pods of a node that can enter other pods' network namespaces", "node", n)
					return nil
				}
				has = len(mates) > 0
				risky[n] = has
			}
			if has {
				add(n)
			}
		}
		return out
	}
	for _, field := range []string{IndexHostNetwork, IndexNodeMate} {
		pods, err := clusterindex.Pods(ctx, r.reader, field, "true")
		if err != nil {
			log.Error(err, "failed to read the hostNetwork pods and those that can enter other pods' network namespaces")
			return nil
		}
		for _, p := range pods {
			add(p.NodeName)
		}
	}
	return out
}
