package controllers

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestPolicyMetricsDeleteOnlyTheirStaleSeries: a reconcile removes the
// series of its policy whose reason or action no longer has a finding,
// sets the others, and leaves every other policy's series alone; a
// deleted policy's series all go.
func TestPolicyMetricsDeleteOnlyTheirStaleSeries(t *testing.T) {
	m := newPolicyMetrics()
	a := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "metrics-test", Name: "a"}
	b := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "metrics-test", Name: "b"}
	finding := func(reason string, action v1alpha1.EnforcementAction) rules.Finding {
		return rules.Finding{Reason: reason, Action: action}
	}
	series := func(ref rules.PolicyRef, reason string) float64 {
		return testutil.ToFloat64(metrics.Violations.WithLabelValues(ref.Kind, ref.Namespace, ref.Name, reason))
	}
	// Only this test's series: the package's manager exports its own.
	count := func() int {
		n := 0
		for _, c := range []prometheus.Collector{metrics.Violations, metrics.ViolationsByAction, metrics.HostNetworkPods, metrics.NodeMatePods} {
			ch := make(chan prometheus.Metric)
			go func() { c.Collect(ch); close(ch) }()
			for m := range ch {
				var d dto.Metric
				if err := m.Write(&d); err != nil {
					t.Fatal(err)
				}
				for _, l := range d.GetLabel() {
					if l.GetName() == "policy_namespace" && l.GetValue() == "metrics-test" {
						n++
					}
				}
			}
		}
		return n
	}
	before := count()
	if before != 0 {
		t.Fatalf("%d series of namespace metrics-test before the test", before)
	}
	m.record(a, &outcome{findings: []rules.Finding{finding("HostPort", v1alpha1.ActionDeny), finding("HostPort", v1alpha1.ActionDeny), finding("SelectedByService", v1alpha1.ActionWarn)}})
	m.record(b, &outcome{findings: []rules.Finding{finding("SelectedByService", v1alpha1.ActionDeny)}})
	// Each also has its hostNetwork and node-mate pod gauges.
	if got := count(); got != 10 {
		t.Fatalf("%d series, want 10 (a: 2 reasons, 2 actions; b: 1 reason, 1 action; 2 gauges each)", got)
	}
	m.record(a, &outcome{findings: []rules.Finding{finding("HostPort", v1alpha1.ActionDeny)}})
	if got := count(); got != 8 {
		t.Errorf("%d series after a's Warn finding went, want 8 (a: HostPort, Deny; b: SelectedByService, Deny; 2 gauges each)", got)
	}
	if got := series(a, "HostPort"); got != 1 {
		t.Errorf("a's HostPort series is %v, want 1", got)
	}
	if got := series(b, "SelectedByService"); got != 1 {
		t.Errorf("b's series is %v, want 1 (another policy's reconcile must not touch it)", got)
	}
	m.forget(a)
	if got := count(); got != 4 {
		t.Errorf("%d series after a was deleted, want b's 4", got)
	}
	m.forget(b)
	if got := count(); got != 0 {
		t.Errorf("%d series left after both were deleted", got)
	}
}
