// Package openreport turns what loopguard finds into OpenReports
// (openreports.io/v1alpha1) results: which rule a finding belongs to, whether
// it passes, fails, warns or could not be checked, and how severe it is. It
// is pure: the controller gathers the findings (the rule engine's, the
// runtime view's, the node-mates') and writes the Report.
package openreport

import (
	"fmt"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// The rules of a result, as Policy Reporter and kubectl show them.
const (
	RuleContainerPort           = "container-port"
	RuleHostPort                = "host-port"
	RuleHostNetwork             = "host-network"
	RuleServiceTarget           = "service-target"
	RuleEndpointTarget          = "endpoint-target"
	RuleListeningBeyondLoopback = "listening-beyond-loopback"
	RuleNetworkPolicyConflict   = "networkpolicy-conflict"
	RuleNodeMate                = "node-mate"
	RuleUnexpectedClient        = "unexpected-client"
)

// ReasonNetworkPolicyConflict is the reason of a rules.Conflict (a
// NetworkPolicy that re-opens a protected port), which has none of its own.
const ReasonNetworkPolicyConflict = "NetworkPolicyConflict"

// Results and severities as the OpenReports CRD spells them.
const (
	ResultPass  openreportsv1alpha1.Result = "pass"
	ResultFail  openreportsv1alpha1.Result = "fail"
	ResultWarn  openreportsv1alpha1.Result = "warn"
	ResultError openreportsv1alpha1.Result = "error"

	SeverityCritical openreportsv1alpha1.ResultSeverity = "critical"
	SeverityHigh     openreportsv1alpha1.ResultSeverity = "high"
	SeverityMedium   openreportsv1alpha1.ResultSeverity = "medium"
	SeverityLow      openreportsv1alpha1.ResultSeverity = "low"
)

// Status is what became of one check of one object.
type Status int

const (
	// Violation: the check found an exposure (a finding).
	Violation Status = iota
	// Compliant: the check ran and found nothing (a protected pod or
	// workload that complies).
	Compliant
	// NotChecked: the check could not run (the namespace's audit failed,
	// the node's agent report is stale).
	NotChecked
)

// PodReasons are the reasons a protected pod (or workload) is judged by:
// a compliant one passes each of them.
var PodReasons = []string{rules.ReasonContainerPort, rules.ReasonHostPort, rules.ReasonHostNetwork}

// AuditReasons are the reasons a namespace's audit judges; when the audit
// cannot run, each of them is an error.
var AuditReasons = []string{
	rules.ReasonContainerPort, rules.ReasonHostPort, rules.ReasonHostNetwork,
	rules.ReasonServiceTarget, rules.ReasonEndpointTarget, ReasonNetworkPolicyConflict,
}

// Classification is where a finding goes in a Report.
type Classification struct {
	Rule     string
	Result   openreportsv1alpha1.Result
	Severity openreportsv1alpha1.ResultSeverity
}

// Classify maps a finding's reason (a rules.Reason*, ReasonNetworkPolicyConflict,
// v1alpha1.ReasonListeningBeyondLoopback, v1alpha1.ReasonUnexpectedClient
// or v1alpha1.ReasonNodeMate) to its
// rule, its status and the enforcement action that applies to it (the
// finding's own, or the policy's for those that have none) to a result and
// a severity. A violation fails under Deny and warns under Warn and Audit;
// a node-mate only ever warns, since admission refuses none. Severity is the
// rule's under that action, whatever the result (as Kyverno reports it): an
// exposure that is real (a listener, a NetworkPolicy that re-opens the port,
// a client the agents saw connected) is one step above one that is
// declared. An unknown reason is an error, so a new reason of the engine
// cannot be reported under a wrong rule.
func Classify(reason string, status Status, action v1alpha1.EnforcementAction) (Classification, error) {
	var c Classification
	real := false
	switch reason {
	case rules.ReasonContainerPort:
		c.Rule = RuleContainerPort
	case rules.ReasonHostPort:
		c.Rule = RuleHostPort
	case rules.ReasonHostNetwork:
		c.Rule = RuleHostNetwork
	case rules.ReasonServiceTarget, rules.ReasonSelectedByService:
		c.Rule = RuleServiceTarget
	case rules.ReasonEndpointTarget:
		c.Rule = RuleEndpointTarget
	case ReasonNetworkPolicyConflict:
		c.Rule, real = RuleNetworkPolicyConflict, true
	case v1alpha1.ReasonListeningBeyondLoopback:
		c.Rule, real = RuleListeningBeyondLoopback, true
	case v1alpha1.ReasonNodeMate:
		c.Rule = RuleNodeMate
	case v1alpha1.ReasonUnexpectedClient:
		c.Rule, real = RuleUnexpectedClient, true
	default:
		return c, fmt.Errorf("no report rule for reason %q", reason)
	}
	switch action {
	case v1alpha1.ActionDeny:
		c.Severity = SeverityHigh
	case v1alpha1.ActionWarn:
		c.Severity = SeverityMedium
	case v1alpha1.ActionAudit:
		c.Severity = SeverityLow
	default:
		return c, fmt.Errorf("reason %s: unknown enforcement action %q", reason, action)
	}
	if real {
		c.Severity = map[openreportsv1alpha1.ResultSeverity]openreportsv1alpha1.ResultSeverity{
			SeverityHigh: SeverityCritical, SeverityMedium: SeverityHigh, SeverityLow: SeverityMedium,
		}[c.Severity]
	}
	switch {
	case status == Compliant:
		c.Result = ResultPass
	case status == NotChecked:
		c.Result = ResultError
	case action == v1alpha1.ActionDeny && reason != v1alpha1.ReasonNodeMate:
		c.Result = ResultFail
	default:
		c.Result = ResultWarn
	}
	return c, nil
}
