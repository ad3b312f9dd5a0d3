package controllers

import (
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/rules"
)

// policyMetrics writes each policy's loopguard_violations,
// loopguard_violations_by_action and pod gauges into a gauge collector
// (metrics.Policies in the manager): a reconcile replaces its policy's
// values, so a reason or action that no longer has a finding has no
// series, and no other policy's series is touched.
type policyMetrics struct{ gauges *metrics.PolicyGauges }

func newPolicyMetrics(g *metrics.PolicyGauges) *policyMetrics {
	return &policyMetrics{gauges: g}
}

func policyKey(ref rules.PolicyRef) metrics.PolicyKey {
	return metrics.PolicyKey{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
}

// record sets ref's series from a reconcile's outcome. A reconcile that
// failed or a policy that does not compile has no violation series (its
// findings are unknown); its pod gauges keep their last value.
func (m *policyMetrics) record(ref rules.PolicyRef, o *outcome) {
	byReason, byAction := map[string]int{}, map[string]int{}
	ok := o.compileErr == nil && o.reconcileErr == nil
	if ok {
		for _, f := range o.findings {
			byReason[f.Reason]++
			byAction[string(f.Action)]++
		}
	}
	k := policyKey(ref)
	m.gauges.SetFindings(k, byReason, byAction)
	if ok {
		m.gauges.SetPods(k, len(o.hostNetworkPods), len(o.nodeMates))
	}
}

// forget drops the series of a deleted policy (the runtime controller
// drops its own).
func (m *policyMetrics) forget(ref rules.PolicyRef) {
	m.gauges.ForgetAudit(policyKey(ref))
}
