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

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// TestNodeReportWaitsForThePolicyIndex: the policy index is fed by a
// handler of its own, which may run after the hostNetwork controller's
// handler of the same event. A node's reconcile that reads the index
// before it holds what the cache holds must not report what it read (a
// hostNetwork pod a new policy selects, reported as not critical) but run
// again: the policies' status writes, which used to be the later event
// that made up for it, no longer reach the nodes.
func TestNodeReportWaitsForThePolicyIndex(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a"}}}
	agent := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent", Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true, Containers: []corev1.Container{{Name: "c"}}}}
	lbs := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy", UID: "u1", Generation: 1},
		Spec: v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}}
	index := policyindex.New()
	r := &HostNetworkReconciler{
		reader: podReader(ns, agent, lbs), index: index,
		api:               newReportsAPI(&countingMapper{}, clusterReportGK),
		hostNetworkSeries: newNodeSeries(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "h"}, []string{"namespace", "pod", "node", "critical"})),
		nodeMateSeries:    newNodeSeries(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "m"}, []string{"namespace", "pod", "node"})),
	}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Name: "n1"}}
	series := func() []string {
		var out []string
		for k := range r.hostNetworkSeries.byNode["n1"] {
			out = append(out, strings.ReplaceAll(k, "\x00", " "))
		}
		return out
	}

	// The index has neither the policy nor the namespace yet.
	res, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter == 0 || len(series()) != 0 {
		t.Fatalf("reconcile with the index behind the cache: result %+v, series %v; want a retry and no series", res, series())
	}
	index.SetNamespaceLabels("shop", ns.Labels)
	if res, _ := r.Reconcile(context.Background(), req); res.RequeueAfter == 0 {
		t.Fatal("reconcile with the namespace indexed but not the policy did not wait")
	}
	if err := index.SetLoopbackService(lbs); err != nil {
		t.Fatal(err)
	}
	res, err = r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := series(), "shop agent n1 true"; res.RequeueAfter != 0 || len(got) != 1 || got[0] != want {
		t.Fatalf("reconcile with the index caught up: result %+v, series %v; want none and [%s]", res, got, want)
	}
}
