package controllers

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// TestNodeReportWaitsForThePolicyIndex: the policy index is fed by a
// handler of its own, which may run after the hostNetwork controller's
// handler of the same event. A node's reconcile that reads the index
// before it holds what the cache holds must not report what it read (a
// hostNetwork pod a new policy selects, reported as not critical) but run
// again: the policies' status writes, which used to be the later event
// that made up for it, no longer reach the nodes.
// lagFixture is a node n1 with a hostNetwork pod shop/agent that the
// LoopbackService shop/envoy selects, in a fake cache read through hook,
// and a reconciler whose policy index holds nothing yet.
type lagFixture struct {
	ns    *corev1.Namespace
	lbs   *v1alpha1.LoopbackService
	index *policyindex.Index
	r     *HostNetworkReconciler
	req   ctrl.Request
}

func newLagFixture(hook func(client.ObjectList)) *lagFixture {
	f := &lagFixture{
		ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a"}}},
		lbs: &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy", UID: "u1", Generation: 1},
			Spec: v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
				Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}},
		index: policyindex.New(),
		req:   ctrl.Request{NamespacedName: client.ObjectKey{Name: "n1"}},
	}
	agent := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent", Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{{Name: "c"}}}}
	f.r = &HostNetworkReconciler{
		reader: hookReader{Reader: podReader(f.ns, agent, f.lbs), hook: hook}, index: f.index, analyses: hostnet.NewMemo(),
		api:               newReportsAPI(&countingMapper{}, clusterReportGK),
		hostNetworkSeries: newNodeSeries(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "h"}, []string{"namespace", "pod", "node", "critical"})),
		nodeMateSeries:    newNodeSeries(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "m"}, []string{"namespace", "pod", "node"})),
	}
	return f
}

// catchUp stores in the index what the fake cache holds.
func (f *lagFixture) catchUp(t *testing.T) {
	f.index.SetNamespaceLabels(f.ns.Name, f.ns.Labels)
	if err := f.index.SetLoopbackService(f.lbs); err != nil {
		t.Fatal(err)
	}
}

// series are n1's loopguard_hostnetwork_pod_info series, labels joined.
func (f *lagFixture) series() []string {
	var out []string
	for k := range f.r.hostNetworkSeries.byNode["n1"] {
		out = append(out, strings.ReplaceAll(k, "\x00", " "))
	}
	return out
}

// hookReader calls hook before each List.
type hookReader struct {
	client.Reader
	hook func(client.ObjectList)
}

func (h hookReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if h.hook != nil {
		h.hook(list)
	}
	return h.Reader.List(ctx, list, opts...)
}

const criticalAgent = "shop agent n1 true"

func TestNodeReportWaitsForThePolicyIndex(t *testing.T) {
	f := newLagFixture(nil)
	r, req, index, series := f.r, f.req, f.index, f.series

	// The index has neither the policy nor the namespace yet.
	res, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter == 0 || len(series()) != 0 {
		t.Fatalf("reconcile with the index behind the cache: result %+v, series %v; want a retry and no series", res, series())
	}
	index.SetNamespaceLabels("shop", f.ns.Labels)
	if res, _ := r.Reconcile(context.Background(), req); res.RequeueAfter == 0 {
		t.Fatal("reconcile with the namespace indexed but not the policy did not wait")
	}
	if err := index.SetLoopbackService(f.lbs); err != nil {
		t.Fatal(err)
	}
	res, err = r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := series(), criticalAgent; res.RequeueAfter != 0 || len(got) != 1 || got[0] != want {
		t.Fatalf("reconcile with the index caught up: result %+v, series %v; want none and [%s]", res, got, want)
	}
}

// TestNodeReportChecksTheIndexBeforeReadingIt: an index that catches up
// while the reconcile runs must not let a report read from it before
// pass the check. Here the index catches up when the check lists the
// cluster policies: a reconcile that read the index first and checked
// after reported shop/agent as not critical, and, the policies' status
// writes no longer reaching the nodes, nothing would have corrected it.
func TestNodeReportChecksTheIndexBeforeReadingIt(t *testing.T) {
	var f *lagFixture
	f = newLagFixture(func(l client.ObjectList) {
		if _, ok := l.(*v1alpha1.ClusterLoopbackServiceList); ok {
			f.catchUp(t)
		}
	})
	res, err := f.r.Reconcile(context.Background(), f.req)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.series(); res.RequeueAfter == 0 && (len(got) != 1 || got[0] != criticalAgent) {
		t.Fatalf("the index caught up during the reconcile: series %v, no retry; want [%s] or a retry", got, criticalAgent)
	}
}

// TestNodeReportsIgnorePolicyStatusWrites: a policy's status write (its
// controller's, after every reconcile) does not reach the nodes; its
// creation, deletion and spec changes do. Each LoopbackService's status
// writes reached the nodes of its namespace's hostNetwork pods: with 30
// namespaces' pods on a node, a third of the manager's CPU in the large run.
func TestNodeReportsIgnorePolicyStatusWrites(t *testing.T) {
	old := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy", UID: "u1", Generation: 1}}
	status := old.DeepCopy()
	status.Status.ObservedGeneration = 1
	spec := old.DeepCopy()
	spec.Generation, spec.Spec.Ports = 2, []v1alpha1.LoopbackPort{{Port: 15000}}
	if policySpecChanged.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: status}) {
		t.Error("a status write reaches the nodes")
	}
	if !policySpecChanged.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: spec}) {
		t.Error("a spec change does not reach the nodes")
	}
	if !policySpecChanged.Create(event.CreateEvent{Object: old}) || !policySpecChanged.Delete(event.DeleteEvent{Object: old}) {
		t.Error("a policy's creation or deletion does not reach the nodes")
	}
}
