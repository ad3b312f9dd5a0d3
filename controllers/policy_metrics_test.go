package controllers

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
	count := func() int {
		return testutil.CollectAndCount(metrics.Violations) + testutil.CollectAndCount(metrics.ViolationsByAction)
	}
	before := count()
	m.record(a, &outcome{findings: []rules.Finding{finding("HostPort", v1alpha1.ActionDeny), finding("HostPort", v1alpha1.ActionDeny), finding("SelectedByService", v1alpha1.ActionWarn)}})
	m.record(b, &outcome{findings: []rules.Finding{finding("SelectedByService", v1alpha1.ActionDeny)}})
	if got := count() - before; got != 6 {
		t.Fatalf("%d new series, want 6 (a: 2 reasons, 2 actions; b: 1 reason, 1 action)", got)
	}
	m.record(a, &outcome{findings: []rules.Finding{finding("HostPort", v1alpha1.ActionDeny)}})
	if got := count() - before; got != 4 {
		t.Errorf("%d series after a's Warn finding went, want 4 (a: HostPort, Deny; b: SelectedByService, Deny)", got)
	}
	if got := series(a, "HostPort"); got != 1 {
		t.Errorf("a's HostPort series is %v, want 1", got)
	}
	if got := series(b, "SelectedByService"); got != 1 {
		t.Errorf("b's series is %v, want 1 (another policy's reconcile must not touch it)", got)
	}
	m.forget(a)
	if got := count() - before; got != 2 {
		t.Errorf("%d series after a was deleted, want b's 2", got)
	}
	m.forget(b)
	if got := count() - before; got != 0 {
		t.Errorf("%d series left after both were deleted", got)
	}
}
