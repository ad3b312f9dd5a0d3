package openreport

import (
	"testing"

	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

func TestClassify(t *testing.T) {
	deny, warn, audit := v1alpha1.ActionDeny, v1alpha1.ActionWarn, v1alpha1.ActionAudit
	tests := []struct {
		reason string
		status Status
		action v1alpha1.EnforcementAction
		want   Classification
	}{
		{rules.ReasonContainerPort, Violation, deny, Classification{RuleContainerPort, ResultFail, SeverityHigh}},
		{rules.ReasonContainerPort, Violation, warn, Classification{RuleContainerPort, ResultWarn, SeverityMedium}},
		{rules.ReasonContainerPort, Violation, audit, Classification{RuleContainerPort, ResultWarn, SeverityLow}},
		{rules.ReasonContainerPort, Compliant, deny, Classification{RuleContainerPort, ResultPass, SeverityHigh}},
		{rules.ReasonHostPort, Violation, deny, Classification{RuleHostPort, ResultFail, SeverityHigh}},
		{rules.ReasonHostPort, Compliant, audit, Classification{RuleHostPort, ResultPass, SeverityLow}},
		{rules.ReasonHostNetwork, Violation, audit, Classification{RuleHostNetwork, ResultWarn, SeverityLow}},
		{rules.ReasonHostNetwork, Violation, deny, Classification{RuleHostNetwork, ResultFail, SeverityHigh}},
		{rules.ReasonServiceTarget, Violation, deny, Classification{RuleServiceTarget, ResultFail, SeverityHigh}},
		// The pod side of the Service race is the same rule.
		{rules.ReasonSelectedByService, Violation, warn, Classification{RuleServiceTarget, ResultWarn, SeverityMedium}},
		{rules.ReasonEndpointTarget, Violation, deny, Classification{RuleEndpointTarget, ResultFail, SeverityHigh}},
		{rules.ReasonEndpointTarget, NotChecked, deny, Classification{RuleEndpointTarget, ResultError, SeverityHigh}},
		// Real exposures are one step more severe.
		{ReasonNetworkPolicyConflict, Violation, deny, Classification{RuleNetworkPolicyConflict, ResultFail, SeverityCritical}},
		{ReasonNetworkPolicyConflict, Violation, audit, Classification{RuleNetworkPolicyConflict, ResultWarn, SeverityMedium}},
		{v1alpha1.ReasonListeningBeyondLoopback, Violation, deny, Classification{RuleListeningBeyondLoopback, ResultFail, SeverityCritical}},
		{v1alpha1.ReasonListeningBeyondLoopback, Violation, warn, Classification{RuleListeningBeyondLoopback, ResultWarn, SeverityHigh}},
		{v1alpha1.ReasonListeningBeyondLoopback, NotChecked, deny, Classification{RuleListeningBeyondLoopback, ResultError, SeverityCritical}},
		// An unexpected client is observed, as a listener is: real.
		{v1alpha1.ReasonUnexpectedClient, Violation, deny, Classification{RuleUnexpectedClient, ResultFail, SeverityCritical}},
		{v1alpha1.ReasonUnexpectedClient, Violation, audit, Classification{RuleUnexpectedClient, ResultWarn, SeverityMedium}},
		// Admission refuses no node-mate: it only ever warns.
		{v1alpha1.ReasonNodeMate, Violation, deny, Classification{RuleNodeMate, ResultWarn, SeverityHigh}},
		{v1alpha1.ReasonNodeMate, Violation, audit, Classification{RuleNodeMate, ResultWarn, SeverityLow}},
	}
	for _, tt := range tests {
		t.Run(tt.reason+"/"+string(tt.action), func(t *testing.T) {
			g := NewWithT(t)
			got, err := Classify(tt.reason, tt.status, tt.action)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestClassifyRefusesUnknown(t *testing.T) {
	g := NewWithT(t)
	_, err := Classify("SomethingNew", Violation, v1alpha1.ActionDeny)
	g.Expect(err).To(MatchError(ContainSubstring(`no report rule for reason "SomethingNew"`)))
	_, err = Classify(rules.ReasonHostPort, Violation, "")
	g.Expect(err).To(MatchError(ContainSubstring("unknown enforcement action")))
}

// TestEveryRuleHasAReason checks every reason the engine reports about an
// object (rules.ObjectReasons: a new one fails here until it has a rule)
// and every other finding loopguard reports classifies, and every rule the
// Report documents is reached.
func TestEveryRuleHasAReason(t *testing.T) {
	g := NewWithT(t)
	reached := map[string]bool{}
	reasons := append(append([]string{}, rules.ObjectReasons...), AuditReasons...)
	for _, r := range append(reasons, ReasonNetworkPolicyConflict, v1alpha1.ReasonListeningBeyondLoopback, v1alpha1.ReasonNodeMate, v1alpha1.ReasonUnexpectedClient) {
		c, err := Classify(r, Violation, v1alpha1.ActionDeny)
		g.Expect(err).NotTo(HaveOccurred())
		reached[c.Rule] = true
	}
	g.Expect(reached).To(HaveLen(9))
	for _, r := range PodReasons {
		g.Expect(AuditReasons).To(ContainElement(r))
	}
}

func TestBuild(t *testing.T) {
	g := NewWithT(t)
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "shop", Name: "admin"}
	pod := func(name string) corev1.ObjectReference {
		return corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: name}
	}
	res := func(result openreportsv1alpha1.Result, name string) openreportsv1alpha1.ReportResult {
		return NewResult(Classification{RuleContainerPort, result, SeverityHigh}, ref, pod(name), name+" says", map[string]string{"port": "15000", "empty": ""})
	}
	in := []openreportsv1alpha1.ReportResult{res(ResultPass, "b"), res(ResultFail, "c"), res(ResultPass, "a"), res(ResultWarn, "d"), res(ResultError, "e"), res(ResultFail, "c")}
	c := Build(in, 10)
	var order []string
	for _, r := range c.Results {
		order = append(order, r.Subjects[0].Name)
	}
	g.Expect(order).To(Equal([]string{"e", "c", "d", "a", "b"}), "errors, fails, warns, passes; duplicates dropped")
	g.Expect(c.Summary).To(Equal(openreportsv1alpha1.ReportSummary{Pass: 2, Fail: 1, Warn: 1, Error: 1}))
	g.Expect(c.Omitted).To(BeZero())
	g.Expect(c.Results[0].Policy).To(Equal("shop/admin"))
	g.Expect(c.Results[0].Properties).To(Equal(map[string]string{"policyKind": "LoopbackService", "port": "15000"}))
	g.Expect(c.Results[0].Source).To(Equal(Source))

	// Bounded: the summary still counts everything, the first kept.
	c = Build(in, 2)
	g.Expect(c.Results).To(HaveLen(2))
	g.Expect(c.Omitted).To(Equal(3))
	g.Expect(c.Summary.Pass).To(Equal(2))
	g.Expect(c.Results[1].Result).To(Equal(ResultFail))

	// The same results in another order make the same content.
	rev := append([]openreportsv1alpha1.ReportResult{}, in...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	g.Expect(Build(rev, 10)).To(Equal(Build(in, 10)))
	g.Expect(PolicyName(rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: "platform"})).To(Equal("platform"))
}

func TestKeepTimestamps(t *testing.T) {
	g := NewWithT(t)
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "shop", Name: "admin"}
	res := func(name string, ts int64) openreportsv1alpha1.ReportResult {
		r := NewResult(Classification{RuleContainerPort, ResultFail, SeverityHigh}, ref,
			corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: name}, name, nil)
		r.Timestamp = metav1.Timestamp{Seconds: ts}
		return r
	}
	prev := []openreportsv1alpha1.ReportResult{res("a", 100), res("b", 200), res("d", 0)}
	next := []openreportsv1alpha1.ReportResult{res("b", 0), res("c", 0), res("d", 0)}
	KeepTimestamps(prev, next, metav1.Timestamp{Seconds: 300})
	g.Expect(next[0].Timestamp.Seconds).To(BeEquivalentTo(200), "a result held before keeps its date")
	g.Expect(next[1].Timestamp.Seconds).To(BeEquivalentTo(300), "a new result is dated now")
	g.Expect(next[2].Timestamp.Seconds).To(BeEquivalentTo(300), "an undated one is dated now")
}
