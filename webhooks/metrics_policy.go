package webhooks

import (
	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/rules"
)

// countPolicyFindings counts one review per policy and action among its
// findings (loopguard_admission_policy_findings_total), so a dashboard
// shows which policies refuse, warn or audit. The labels are the policy's
// kind, namespace, name and the action: bounded by the policies.
func countPolicyFindings(findings []rules.Finding) {
	type key struct {
		ref    rules.PolicyRef
		action string
	}
	seen := map[key]bool{}
	for _, f := range findings {
		for _, p := range f.Policies {
			k := key{p, string(f.Action)}
			if seen[k] {
				continue
			}
			seen[k] = true
			metrics.AdmissionPolicyFindings.WithLabelValues(p.Kind, p.Namespace, p.Name, decisionOf(f.Action)).Inc()
		}
	}
}

// decisionOf names an action as the decision label does.
func decisionOf(a v1alpha1.EnforcementAction) string {
	switch a {
	case v1alpha1.ActionDeny:
		return decisionDeny
	case v1alpha1.ActionWarn:
		return decisionWarn
	default:
		return decisionAudit
	}
}
