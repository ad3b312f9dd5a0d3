package controllers

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/metrics/metricstest"
	"github.com/loopguard/loopguard/internal/rules"
)

func gathered(t testing.TB, c prometheus.Collector) map[string]float64 {
	t.Helper()
	got, err := metricstest.Scrape(c)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPolicyMetricsDeleteOnlyTheirStaleSeries: a reconcile removes the
// series of its policy whose reason or action no longer has a finding,
// sets the others, and leaves every other policy's series alone; a
// deleted policy's series all go.
func TestPolicyMetricsDeleteOnlyTheirStaleSeries(t *testing.T) {
	g := metrics.NewPolicyGauges()
	m := newPolicyMetrics(g)
	a := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "metrics-test", Name: "a"}
	b := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "metrics-test", Name: "b"}
	finding := func(reason string, action v1alpha1.EnforcementAction) rules.Finding {
		return rules.Finding{Reason: reason, Action: action}
	}
	m.record(a, &outcome{findings: []rules.Finding{finding("HostPort", v1alpha1.ActionDeny), finding("HostPort", v1alpha1.ActionDeny), finding("SelectedByService", v1alpha1.ActionWarn)}})
	m.record(b, &outcome{findings: []rules.Finding{finding("SelectedByService", v1alpha1.ActionDeny)}, hostNetworkPods: make([]v1alpha1.HostNetworkPod, 3)})
	want := map[string]float64{
		metricstest.PolicySeries("loopguard_violations", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "reason", "HostPort"):          2,
		metricstest.PolicySeries("loopguard_violations", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "reason", "SelectedByService"): 1,
		metricstest.PolicySeries("loopguard_violations_by_action", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "action", "Deny"):    2,
		metricstest.PolicySeries("loopguard_violations_by_action", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "action", "Warn"):    1,
		metricstest.PolicySeries("loopguard_hostnetwork_pods", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}):                          0,
		metricstest.PolicySeries("loopguard_node_mate_pods", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}):                            0,
		metricstest.PolicySeries("loopguard_violations", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"}, "reason", "SelectedByService"): 1,
		metricstest.PolicySeries("loopguard_violations_by_action", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"}, "action", "Deny"):    1,
		metricstest.PolicySeries("loopguard_hostnetwork_pods", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"}):                          3,
		metricstest.PolicySeries("loopguard_node_mate_pods", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"}):                            0,
	}
	check := func(step string) {
		t.Helper()
		got := gathered(t, g)
		for k, v := range want {
			if gv, ok := got[k]; !ok || gv != v {
				t.Errorf("%s: %s = %v (present %v), want %v", step, k, gv, ok, v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected series %s = %v", step, k, v)
			}
		}
	}
	check("both recorded")

	m.record(a, &outcome{findings: []rules.Finding{finding("HostPort", v1alpha1.ActionDeny)}})
	delete(want, metricstest.PolicySeries("loopguard_violations", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "reason", "SelectedByService"))
	delete(want, metricstest.PolicySeries("loopguard_violations_by_action", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "action", "Warn"))
	want[metricstest.PolicySeries("loopguard_violations", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "reason", "HostPort")] = 1
	want[metricstest.PolicySeries("loopguard_violations_by_action", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}, "action", "Deny")] = 1
	check("a's Warn finding gone")

	// A failed reconcile: no violation series, the pod gauges keep their value.
	m.record(b, &outcome{reconcileErr: errors.New("the cache is not synced")})
	delete(want, metricstest.PolicySeries("loopguard_violations", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"}, "reason", "SelectedByService"))
	delete(want, metricstest.PolicySeries("loopguard_violations_by_action", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"}, "action", "Deny"))
	check("b's reconcile failed")

	// The runtime controller's series outlive the audit's and go on their own.
	bk := policyKey(b)
	g.SetRuntime(bk, 1, 2, 3)
	m.forget(b)
	for k := range want {
		if strings.Contains(k, `policy="b"`) {
			delete(want, k)
		}
	}
	want[metricstest.PolicySeries("loopguard_runtime_pods_beyond_loopback", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"})] = 1
	want[metricstest.PolicySeries("loopguard_runtime_stale_nodes", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"})] = 2
	want[metricstest.PolicySeries("loopguard_runtime_unexpected_clients", metrics.PolicyKey{Kind: "LoopbackService", Namespace: "metrics-test", Name: "b"})] = 3
	check("b deleted, its runtime series kept")
	g.ForgetRuntime(bk)
	m.forget(a)
	want = map[string]float64{}
	check("both deleted")
}
