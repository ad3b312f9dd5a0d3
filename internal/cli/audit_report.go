package cli

import (
	"fmt"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// auditReport is audit's JSON and YAML output.
type auditReport struct {
	SchemaVersion string `json:"schemaVersion"`
	// Namespaces audited: those where at least one policy applies.
	Namespaces      []string               `json:"namespaces"`
	Findings        []reportFinding        `json:"findings"`
	Conflicts       []reportConflict       `json:"conflicts"`
	HostNetworkPods []reportHostNetworkPod `json:"hostNetworkPods"`
	// NodeMates are pods that can enter the network namespace of a
	// protected pod on the same node.
	NodeMates       []reportNodeMate      `json:"nodeMates"`
	InvalidPolicies []reportInvalidPolicy `json:"invalidPolicies"`
	// Runtime is what the node agents saw listening (NodeBindReports);
	// absent without reports.
	Runtime  *reportRuntime `json:"runtime,omitempty"`
	Warnings []string       `json:"warnings"`
	Summary  auditSummary   `json:"summary"`
}

// reportConflict is a NetworkPolicy ingress rule that admits a protected
// port of a protected pod.
type reportConflict struct {
	Policy        reportPolicy `json:"policy"`
	Namespace     string       `json:"namespace"`
	NetworkPolicy string       `json:"networkPolicy"`
	// Rule is the index in spec.ingress.
	Rule int `json:"rule"`
	// Ports is the protected range it admits: "15000/TCP", "6060-6069/TCP".
	Ports  string `json:"ports"`
	Reason string `json:"reason"`
}

// reportHostNetworkPod is a hostNetwork pod that a policy selects: its
// loopback is the node's (internal/hostnet analyses it).
type reportHostNetworkPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
	// Policies select the pod; hostNetwork is each one's setting: Deny
	// (also a HostNetwork finding under its enforcementAction) or Audit.
	Policies []hostNetworkPolicy `json:"policies"`
	// ProtectedPorts are protected ports the pod declares, so serves on the
	// node's network.
	ProtectedPorts []string `json:"protectedPorts"`
	// NodeMates are the other hostNetwork pods on the same node, which
	// share its loopback (among the pods audit read: its namespace with
	// -n, every namespace with -A).
	NodeMates []string `json:"nodeMates"`
	// Summary says it in a sentence.
	Summary string `json:"summary"`
}

type hostNetworkPolicy struct {
	reportPolicy `json:",inline"`
	HostNetwork  string `json:"hostNetwork"`
}

// reportInvalidPolicy is a policy the API server accepted but loopguard
// cannot compile (e.g. a label selector with bad values); it protects
// nothing.
type reportInvalidPolicy struct {
	Policy reportPolicy `json:"policy"`
	Error  string       `json:"error"`
}

type auditSummary struct {
	Namespaces      int `json:"namespaces"`
	Policies        int `json:"policies"`
	Objects         int `json:"objects"`
	Findings        int `json:"findings"`
	Deny            int `json:"deny"`
	Warn            int `json:"warn"`
	Audit           int `json:"audit"`
	Conflicts       int `json:"conflicts"`
	HostNetworkPods int `json:"hostNetworkPods"`
	NodeMates       int `json:"nodeMates"`
	// RuntimeListeners are protected ports the node agents saw listening
	// beyond loopback; RuntimeDeny those under a Deny policy (they fail
	// the audit like a Deny finding).
	RuntimeListeners int    `json:"runtimeListeners"`
	RuntimeDeny      int    `json:"runtimeDeny"`
	Result           string `json:"result"`
}

func (rep *auditReport) invalid(ref rules.PolicyRef, err error) {
	rep.InvalidPolicies = append(rep.InvalidPolicies, reportInvalidPolicy{
		Policy: reportPolicy{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}, Error: err.Error(),
	})
	rep.Warnings = append(rep.Warnings, fmt.Sprintf("%v; the policy protects nothing until it is fixed", err))
}

// finish computes the summary.
func (rep *auditReport) finish() {
	actions := make([]v1alpha1.EnforcementAction, len(rep.Findings))
	for i, f := range rep.Findings {
		actions[i] = v1alpha1.EnforcementAction(f.Action)
	}
	c := countActions(actions)
	s := &rep.Summary
	s.Findings, s.Deny, s.Warn, s.Audit = len(rep.Findings), c.deny, c.warn, c.audit
	s.Conflicts, s.HostNetworkPods, s.NodeMates = len(rep.Conflicts), len(rep.HostNetworkPods), len(rep.NodeMates)
	if rep.Runtime != nil {
		s.RuntimeListeners = len(rep.Runtime.Listeners)
		for _, l := range rep.Runtime.Listeners {
			if l.Action == string(v1alpha1.ActionDeny) {
				s.RuntimeDeny++
			}
		}
	}
	s.Result = "pass"
	if c.deny > 0 || s.RuntimeDeny > 0 {
		s.Result = "fail"
	}
}

func refOf(r rules.PolicyRef) reportPolicy {
	return reportPolicy{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}
