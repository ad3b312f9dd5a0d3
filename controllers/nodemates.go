package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// Pod field indexes for node-mates: the node of every scheduled pod, the
// node of a pod that can enter other pods' network namespaces
// (hostnet.NodeMateRisks), and whether a pod can at all.
const (
	IndexPodNode      = "loopguard.io/node"
	IndexNodeMateNode = "loopguard.io/nodeMateNode"
	IndexNodeMate     = "loopguard.io/nodeMate"
)

// hasNodeMateRisk reports whether o is a pod that can enter other pods'
// network namespaces on its node.
func hasNodeMateRisk(o client.Object) bool {
	p, ok := podview.From(o)
	return ok && len(hostnet.NodeMateRisks(p.TrimmedSpec)) > 0
}

// registerNodeMateIndexes adds the pod indexes node-mates are found with.
// Pods by node is dense (every pod) and only looked up across namespaces:
// clusterindex keeps one key a pod, not two.
func registerNodeMateIndexes(mgr ctrl.Manager) error {
	ctx := context.Background()
	if err := clusterindex.Register(ctx, mgr.GetCache(), &corev1.Pod{}, IndexPodNode, func(o client.Object) []string {
		if p, ok := podview.From(o); ok && p.NodeName != "" {
			return []string{p.NodeName}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("failed to index pods by %s: %w", IndexPodNode, err)
	}
	for _, ix := range []struct {
		name string
		f    client.IndexerFunc
	}{
		{IndexNodeMateNode, func(o client.Object) []string {
			if p, ok := podview.From(o); ok && p.NodeName != "" && hasNodeMateRisk(p) {
				return []string{p.NodeName}
			}
			return nil
		}},
		{IndexNodeMate, func(o client.Object) []string {
			if hasNodeMateRisk(o) {
				return []string{"true"}
			}
			return nil
		}},
	} {
		if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, ix.name, ix.f); err != nil {
			return fmt.Errorf("failed to index pods by %s: %w", ix.name, err)
		}
	}
	return nil
}

// riskyPodsOn reads the pods of a node that can enter other pods' network
// namespaces from the cache's index, without copies (callers only read
// them).
func riskyPodsOn(ctx context.Context, c client.Reader, node string) ([]*podview.Pod, error) {
	return clusterindex.Pods(ctx, c, IndexNodeMateNode, node)
}

// observeNodeMates finds, on the nodes of the selected pods, the pods that
// can enter their network namespaces (hostnet.NodeMates): found again when
// every says the reconcile reads every namespace, or when the memo's
// inputs changed.
func (r *policyReconciler) observeNodeMates(ctx context.Context, ref rules.PolicyRef, o *outcome, every bool) error {
	version := r.nodeMates.version.Load() // before the cache: nodeMateMemo
	digest := r.nodeMates.digest(o.matched)
	if mates, ok := r.nodeMates.get(ref, version, digest); ok && !every {
		o.nodeMates = mates
		return nil
	}
	nodes := map[string]bool{}
	for _, p := range o.matched {
		if p.NodeName != "" {
			nodes[p.NodeName] = true
		}
	}
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	var candidates []*podview.Pod
	for _, n := range names {
		pods, err := riskyPodsOn(ctx, r.reader, n)
		if err != nil {
			return err
		}
		candidates = append(candidates, pods...)
	}
	o.nodeMates = nil
	for _, m := range hostnet.NodeMates(candidates, o.matched, func(*podview.Pod) bool { return true }) {
		o.nodeMates = append(o.nodeMates, statusNodeMate(m))
	}
	r.nodeMates.put(ref, version, digest, o.nodeMates)
	return nil
}

func statusNodeMate(m hostnet.NodeMate) v1alpha1.NodeMate {
	reasons := m.Details()
	if len(reasons) > v1alpha1.MaxNodeMateReasons {
		n := len(reasons) - v1alpha1.MaxNodeMateReasons + 1
		reasons = append(reasons[:v1alpha1.MaxNodeMateReasons-1:v1alpha1.MaxNodeMateReasons-1], fmt.Sprintf("and %d more", n))
	}
	return v1alpha1.NodeMate{Namespace: m.Namespace, Name: m.Name, Node: m.Node, Reasons: reasons}
}

// setNodeMates writes status.nodeMates (sorted by hostnet.NodeMates,
// bounded) and its count.
func setNodeMates(st *v1alpha1.LoopbackServiceStatus, mates []v1alpha1.NodeMate) {
	st.NodeMates, st.NodeMateCount = nil, nil
	if len(mates) == 0 {
		return
	}
	n := int32(len(mates))
	st.NodeMateCount = &n
	st.NodeMates = mates[:min(len(mates), v1alpha1.MaxStatusViolations)]
}

// announceNodeMates emits a Warning Event for each node-mate status lists
// that the previous status did not, bounded like violations.
func (r *policyReconciler) announceNodeMates(obj policyObject, old, cur *v1alpha1.LoopbackServiceStatus) {
	key := func(m v1alpha1.NodeMate) string { return m.Namespace + "/" + m.Name + "@" + m.Node }
	seen := map[string]bool{}
	for _, m := range old.NodeMates {
		seen[key(m)] = true
	}
	n := 0
	for _, m := range cur.NodeMates {
		if seen[key(m)] {
			continue
		}
		if n == maxEventsPerReconcile {
			break
		}
		n++
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name}}
		r.recorder.Eventf(obj, pod, corev1.EventTypeWarning, v1alpha1.ReasonNodeMate, "Audit",
			"pod %s/%s on node %s can enter the network namespace of the selected pods there, and so reach their loopback-only ports: %s",
			m.Namespace, m.Name, m.Node, strings.Join(m.Reasons, "; "))
	}
}

// nodeMatePolicies maps a pod that can enter other pods' network
// namespaces to the policies of kind that select a pod on its node (read
// through clusterindex: the cache holds podview.Pods).
func nodeMatePolicies(c client.Reader, index *policyindex.Index, kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		p, ok := podview.From(o)
		if !ok || p.NodeName == "" {
			return nil
		}
		onNode, err := clusterindex.Pods(ctx, c, IndexPodNode, p.NodeName)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "failed to read the pods of a node", "node", p.NodeName)
			return nil
		}
		return policiesSelectingPods(index, kind, onNode)
	}
}

// nodeMateWatch is the pod watch that brings a new (or changed, or gone)
// node-mate to the policies selecting pods on its node.
func nodeMateWatch(c client.Reader, index *policyindex.Index, kind string) (handler.EventHandler, predicate.Predicate) {
	risky := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return hasNodeMateRisk(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return hasNodeMateRisk(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return hasNodeMateRisk(e.ObjectOld) || hasNodeMateRisk(e.ObjectNew) },
		GenericFunc: func(e event.GenericEvent) bool { return hasNodeMateRisk(e.Object) },
	}
	return handler.EnqueueRequestsFromMapFunc(nodeMatePolicies(c, index, kind)), predicate.And[client.Object](risky, relevantChange())
}

// protectedPod reports whether a policy of the index selects the pod.
func protectedPod(index *policyindex.Index) func(*podview.Pod) bool {
	return func(p *podview.Pod) bool {
		return len(index.Env(p.Namespace).MatchingPolicies(labels.Set(p.Labels))) > 0
	}
}

// nodeMateCandidates returns the pods of a node that can enter other
// pods' network namespaces and, when there are any, every pod of the node.
func (r *HostNetworkReconciler) nodeMateCandidates(ctx context.Context, node string) (risky, all []*podview.Pod, err error) {
	risky, err = riskyPodsOn(ctx, r.reader, node)
	if err != nil || len(risky) == 0 {
		return nil, nil, err
	}
	all, err = clusterindex.Pods(ctx, r.reader, IndexPodNode, node)
	return risky, all, err
}

// nodeMateRows are the node's loopguard_node_mate_pod_info series.
func nodeMateRows(node string, mates []hostnet.NodeMate) [][]string {
	rows := make([][]string, 0, len(mates))
	for _, m := range mates {
		rows = append(rows, []string{m.Namespace, m.Name, node})
	}
	return rows
}

// nodeMateResults are the node report's results for its node-mates.
func nodeMateResults(node string, mates []hostnet.NodeMate) []openreportsv1alpha1.ReportResult {
	out := make([]openreportsv1alpha1.ReportResult, 0, len(mates))
	for _, m := range mates {
		reasons := make([]string, len(m.Risks))
		for i, rk := range m.Risks {
			reasons[i] = rk.Reason
		}
		out = append(out, openreportsv1alpha1.ReportResult{
			Source: "loopguard", Policy: "loopguard/hostnetwork", Rule: "node-mate",
			Category: "loopback", Result: "fail", Severity: "critical",
			Subjects:    []corev1.ObjectReference{{APIVersion: "v1", Kind: "Pod", Namespace: m.Namespace, Name: m.Name}},
			Description: m.Summary(),
			Properties: map[string]string{
				"node": node, "reasons": strings.Join(reasons, ","), "details": strings.Join(m.Details(), "; "),
				"protectedPods": strings.Join(m.Protected, ","),
			},
		})
	}
	return out
}
