package webhooks

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestCountPolicyFindings checks one review counts once per policy and
// action, whatever the number of findings naming them.
func TestCountPolicyFindings(t *testing.T) {
	a := rules.PolicyRef{Kind: "LoopbackService", Namespace: "metrics-test", Name: "a"}
	b := rules.PolicyRef{Kind: "ClusterLoopbackService", Name: "metrics-test-b"}
	countPolicyFindings([]rules.Finding{
		{Action: v1alpha1.ActionDeny, Policies: []rules.PolicyRef{a, b}},
		{Action: v1alpha1.ActionDeny, Policies: []rules.PolicyRef{a}},
		{Action: v1alpha1.ActionWarn, Policies: []rules.PolicyRef{a}},
	})
	for _, tc := range []struct {
		ref    rules.PolicyRef
		action string
		want   float64
	}{
		{a, "deny", 1}, {a, "warn", 1}, {a, "audit", 0}, {b, "deny", 1}, {b, "warn", 0},
	} {
		got := testutil.ToFloat64(metrics.AdmissionPolicyFindings.WithLabelValues(tc.ref.Kind, tc.ref.Namespace, tc.ref.Name, tc.action))
		if got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.ref, tc.action, got, tc.want)
		}
	}
}
