package controllers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// setRuntimeVerifiedCondition sets RuntimeVerified, the runtime
// controller's condition, from status.runtime: False for pods the agents
// saw listening beyond loopback, else for unexpected clients they saw
// connected on loopback (the policy reconciler carries either into
// Compliant), True when every selected running pod was checked and has
// neither, Unknown when the agents could not tell (no report, stale
// reports, pods not scanned yet) or the policy does not compile. A finding
// is False even when other pods are unchecked: what was seen is certain.
func setRuntimeVerifiedCondition(st *v1alpha1.LoopbackServiceStatus, generation int64, compileErr error, rt *v1alpha1.RuntimeStatus) {
	set := func(s metav1.ConditionStatus, reason, msg string) {
		setCondition(st, generation, v1alpha1.ConditionRuntimeVerified, s, reason, msg)
	}
	switch {
	case compileErr != nil:
		set(metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, fmt.Sprintf("the policy is not enforced: %v", compileErr))
	case rt == nil:
		set(metav1.ConditionUnknown, v1alpha1.ReasonNoNodeBindReports,
			"no node of a selected running pod has a NodeBindReport (is the loopguard agent installed?): listeners are not verified")
	case rt.PodsBeyondLoopback > 0:
		msg := "1 selected pod listens on a protected port beyond loopback: "
		if rt.PodsBeyondLoopback > 1 {
			msg = fmt.Sprintf("%d selected pods listen on protected ports beyond loopback; the first: ", rt.PodsBeyondLoopback)
		}
		msg += describeListener(rt.Listeners[0])
		if rt.UnexpectedClientCount > 0 {
			msg += fmt.Sprintf("; besides, %d unexpected clients are connected (status.runtime.unexpectedClients)", rt.UnexpectedClientCount)
		}
		set(metav1.ConditionFalse, v1alpha1.ReasonListeningBeyondLoopback, msg)
	case rt.UnexpectedClientCount > 0 && len(rt.UnexpectedClients) > 0:
		msg := "1 unexpected client is connected to a protected port on loopback: "
		if rt.UnexpectedClientCount > 1 {
			msg = fmt.Sprintf("%d unexpected clients are connected to protected ports on loopback; the first: ", rt.UnexpectedClientCount)
		}
		set(metav1.ConditionFalse, v1alpha1.ReasonUnexpectedClient, msg+describeClient(rt.UnexpectedClients[0]))
	case rt.PodsUnchecked > 0:
		msg := fmt.Sprintf("%d selected running pods are not checked (not scanned yet, or their node's report is stale); none of the %d checked listens on a protected port beyond loopback",
			rt.PodsUnchecked, rt.PodsChecked)
		if len(rt.StaleNodes) > 0 {
			msg += "; stale reports: " + bounded(rt.StaleNodes)
		}
		set(metav1.ConditionUnknown, v1alpha1.ReasonPodsUnchecked, msg)
	default:
		set(metav1.ConditionTrue, v1alpha1.ReasonNotListeningBeyondLoopback,
			fmt.Sprintf("%d selected running pods checked: none listens on a protected port beyond loopback", rt.PodsChecked))
	}
}
