package controllers

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/rules"
)

// outcome is everything one reconcile learned, from which status is
// computed. A policy that does not compile has compileErr set and nothing
// else.
type outcome struct {
	compileErr      error
	reconcileErr    error
	mode            v1alpha1.NetworkPolicyMode
	networkPolicies []string
	matchedPods     int32
	findings        []rules.Finding
	conflicts       []netpol.Conflict
	hostNetworkPods []v1alpha1.HostNetworkPod
	runtime         runtimeObservation
	// adminNetworkPolicy is the AdminNetworkPolicy kept in Admin mode;
	// adminErr says why there is none.
	adminNetworkPolicy string
	adminErr           error
	protected          string // the protected ports, for messages
	// namespaces counts the namespaces enforced (not terminating);
	// failures are those where something failed: the others carried on.
	namespaces int
	failures   []namespaceFailure
	// matched are the selected pods of every namespace; nodeMates the pods
	// that can enter their network namespaces on their node.
	matched   []*corev1.Pod
	nodeMates []v1alpha1.NodeMate
}

func (o *outcome) add(obs *observation) {
	o.matchedPods += obs.matchedPods
	o.findings = append(o.findings, obs.findings...)
	o.conflicts = append(o.conflicts, obs.conflicts...)
	o.hostNetworkPods = append(o.hostNetworkPods, obs.hostNetworkPods...)
	o.matched = append(o.matched, obs.matched...)
	o.runtime.merge(obs.runtime)
}

// computeStatus returns the status for the outcome. Every condition is
// always set; conditions keep their lastTransitionTime unless their status
// flips, so an unchanged outcome yields an equal status and no write.
func computeStatus(old v1alpha1.LoopbackServiceStatus, generation int64, o *outcome) v1alpha1.LoopbackServiceStatus {
	st := *old.DeepCopy()
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation,
		})
	}
	if o.compileErr != nil {
		msg := fmt.Sprintf("the policy is not enforced: %v", o.compileErr)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector, msg)
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, msg)
		set(v1alpha1.ConditionCompliant, metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, msg)
		st.ObservedGeneration = generation
		return st
	}
	if o.reconcileErr != nil {
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonReconcileError, o.reconcileErr.Error())
		return st // keep the last good observation
	}
	st.ObservedGeneration = generation
	st.ProtectedPorts = o.protected
	st.MatchedPods = ptr.To(o.matchedPods)
	all := violations(o.findings)
	st.ViolationCount = ptr.To(int32(len(all)))
	st.Violations = nil
	if len(all) > 0 {
		st.Violations = all[:min(len(all), v1alpha1.MaxStatusViolations)]
	}
	// Cache lists come in no fixed order: sort whatever status shows, or
	// every reconcile would write a reordered status.
	sort.Slice(o.hostNetworkPods, func(i, j int) bool {
		a, b := o.hostNetworkPods[i], o.hostNetworkPods[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	sort.Strings(o.networkPolicies)
	sort.Slice(o.conflicts, func(i, j int) bool { return o.conflicts[i].String() < o.conflicts[j].String() })
	st.HostNetworkPods = nil
	if len(o.hostNetworkPods) > 0 {
		st.HostNetworkPods = o.hostNetworkPods[:min(len(o.hostNetworkPods), v1alpha1.MaxStatusViolations)]
	}
	st.NetworkPolicies = o.networkPolicies
	st.Runtime = o.runtime.status()
	setNodeMates(&st, o.nodeMates)

	if len(o.failures) > 0 {
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPartiallyReconciled, o.partialFailureMessage())
	} else {
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReconciled,
			fmt.Sprintf("enforcing %s on %d matched pods", o.protected, o.matchedPods))
	}

	switch taken := o.nameTaken(); {
	case o.mode == v1alpha1.NetworkPolicyDisabled:
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionFalse, v1alpha1.ReasonNetworkPolicyDisabled,
			"spec.networkPolicy is Disabled: no NetworkPolicy blocks ingress to the protected ports")
	case len(taken) > 0:
		msg := nameTakenMessage(taken, o.protected)
		if o.adminNetworkPolicy != "" {
			msg += fmt.Sprintf("; AdminNetworkPolicy %s still denies it to every pod", o.adminNetworkPolicy)
		}
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionFalse, v1alpha1.ReasonNetworkPolicyNameTaken, msg)
	case o.mode == v1alpha1.NetworkPolicyAdmin && o.adminErr != nil:
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionFalse, v1alpha1.ReasonAdminNetworkPolicyUnavailable,
			fmt.Sprintf("spec.networkPolicy is Admin but %v; NetworkPolicy %s still blocks ingress to %s", o.adminErr, strings.Join(o.networkPolicies, ", "), o.protected))
	case len(o.conflicts) > 0 && o.adminNetworkPolicy != "":
		// The AdminNetworkPolicy is evaluated first and denies every pod:
		// the conflicting NetworkPolicies only still admit what it cannot
		// name (nodes, clients outside the cluster). Proven with traffic
		// on the dev node's enforcer (test/netpol TestAdminNetworkPolicy).
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionTrue, v1alpha1.ReasonAdminNetworkPolicyApplied,
			fmt.Sprintf("AdminNetworkPolicy %s denies every pod's traffic to %s ahead of namespace NetworkPolicies; these still admit it from outside the pod network (nodes, external clients), which an AdminNetworkPolicy cannot deny: %s", o.adminNetworkPolicy, o.protected, describeConflicts(o.conflicts)))
	case len(o.conflicts) > 0:
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionFalse, v1alpha1.ReasonConflictingPolicies,
			fmt.Sprintf("NetworkPolicies are unions, so these re-open protected ports: %s; narrow their ingress ports or podSelector", describeConflicts(o.conflicts)))
	default:
		msg := fmt.Sprintf("NetworkPolicy %s blocks ingress to %s", strings.Join(o.networkPolicies, ", "), o.protected)
		if o.adminNetworkPolicy != "" {
			msg += fmt.Sprintf("; AdminNetworkPolicy %s denies it to every pod ahead of namespace NetworkPolicies", o.adminNetworkPolicy)
		}
		set(v1alpha1.ConditionNetworkPolicyEffective, metav1.ConditionTrue, v1alpha1.ReasonNetworkPolicyApplied, msg)
	}

	if rt := st.Runtime; rt != nil && rt.PodsBeyondLoopback > 0 {
		setRuntimeCompliant(set, rt, len(all))
	} else if len(all) == 0 {
		set(v1alpha1.ConditionCompliant, metav1.ConditionTrue, v1alpha1.ReasonNoViolations, "no existing object exposes a protected port")
	} else {
		what := "1 existing object exposes a protected port"
		if len(all) > 1 {
			what = fmt.Sprintf("%d existing objects expose protected ports; the first", len(all))
		}
		set(v1alpha1.ConditionCompliant, metav1.ConditionFalse, v1alpha1.ReasonViolationsFound, what+": "+all[0].Message)
	}
	return st
}

func describeConflicts(cs []netpol.Conflict) string {
	parts := make([]string, 0, len(cs))
	seen := map[string]bool{}
	for _, c := range cs {
		s := "NetworkPolicy " + c.String()
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// newViolations returns the violations of cur that old did not list, for
// Events: a violation is announced once, not on every resync.
func newViolations(old, cur []v1alpha1.Violation) []v1alpha1.Violation {
	key := func(v v1alpha1.Violation) string { return v.Kind + "/" + v.Namespace + "/" + v.Name + "/" + v.Field }
	seen := map[string]bool{}
	for _, v := range old {
		seen[key(v)] = true
	}
	var out []v1alpha1.Violation
	for _, v := range cur {
		if !seen[key(v)] {
			out = append(out, v)
		}
	}
	return out
}

func portsString(p *rules.Policy) string {
	s := make([]string, len(p.Ports))
	for i, r := range p.Ports {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}
