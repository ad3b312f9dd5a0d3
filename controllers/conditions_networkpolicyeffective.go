package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// setNetworkPolicyEffectiveCondition sets NetworkPolicyEffective: whether
// the managed NetworkPolicies (and, in Admin mode, the AdminNetworkPolicy)
// block ingress to the protected ports, or what keeps them from it.
func setNetworkPolicyEffectiveCondition(st *v1alpha1.LoopbackServiceStatus, generation int64, o *outcome) {
	set := func(s metav1.ConditionStatus, reason, msg string) {
		setCondition(st, generation, v1alpha1.ConditionNetworkPolicyEffective, s, reason, msg)
	}
	switch taken := o.nameTakenErrors(); {
	case o.compileErr != nil:
		set(metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, fmt.Sprintf("the policy is not enforced: %v", o.compileErr))
	case o.reconcileErr != nil:
		keepOrUnknown(st, generation, v1alpha1.ConditionNetworkPolicyEffective, o.reconcileErr)
	case o.mode == v1alpha1.NetworkPolicyDisabled:
		set(metav1.ConditionFalse, v1alpha1.ReasonNetworkPolicyDisabled,
			"spec.networkPolicy is Disabled: no NetworkPolicy blocks ingress to the protected ports")
	case len(taken) > 0:
		msg := nameTakenMessage(taken, o.protected)
		if o.adminNetworkPolicy != "" {
			msg += fmt.Sprintf("; AdminNetworkPolicy %s still denies it to every pod", o.adminNetworkPolicy)
		}
		set(metav1.ConditionFalse, v1alpha1.ReasonNetworkPolicyNameTaken, msg)
	case o.mode == v1alpha1.NetworkPolicyAdmin && o.adminErr != nil:
		set(metav1.ConditionFalse, v1alpha1.ReasonAdminNetworkPolicyUnavailable,
			fmt.Sprintf("spec.networkPolicy is Admin but %v; NetworkPolicy %s still blocks ingress to %s", o.adminErr, strings.Join(o.networkPolicies, ", "), o.protected))
	case len(o.conflicts) > 0 && o.adminNetworkPolicy != "":
		// The AdminNetworkPolicy is evaluated first and denies every pod:
		// the conflicting NetworkPolicies only still admit what it cannot
		// name (nodes, clients outside the cluster). Proven with traffic
		// on the dev node's enforcer (test/netpol TestAdminNetworkPolicy).
		set(metav1.ConditionTrue, v1alpha1.ReasonAdminNetworkPolicyApplied,
			fmt.Sprintf("AdminNetworkPolicy %s denies every pod's traffic to %s ahead of namespace NetworkPolicies; these still admit it from outside the pod network (nodes, external clients), which an AdminNetworkPolicy cannot deny: %s", o.adminNetworkPolicy, o.protected, describeConflicts(o.conflicts)))
	case len(o.conflicts) > 0:
		set(metav1.ConditionFalse, v1alpha1.ReasonConflictingPolicies,
			fmt.Sprintf("NetworkPolicies are unions, so these re-open protected ports: %s; narrow their ingress ports or podSelector", describeConflicts(o.conflicts)))
	default:
		msg := fmt.Sprintf("NetworkPolicy %s blocks ingress to %s", strings.Join(o.networkPolicies, ", "), o.protected)
		if o.adminNetworkPolicy != "" {
			msg += fmt.Sprintf("; AdminNetworkPolicy %s denies it to every pod ahead of namespace NetworkPolicies", o.adminNetworkPolicy)
		}
		set(metav1.ConditionTrue, v1alpha1.ReasonNetworkPolicyApplied, msg)
	}
}
