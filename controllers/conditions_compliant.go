package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// setCompliantCondition sets Compliant from the declared violations (this
// reconcile's audit, in st) and the runtime findings, read from the
// RuntimeVerified condition the runtime controller owns: a pod the agents
// saw listening beyond loopback, or an unexpected client they saw connected
// to a protected port, is a real finding, which outranks a declared one
// (still counted in the message).
func setCompliantCondition(st *v1alpha1.LoopbackServiceStatus, generation int64, o *outcome) {
	set := func(s metav1.ConditionStatus, reason, msg string) {
		setCondition(st, generation, v1alpha1.ConditionCompliant, s, reason, msg)
	}
	if o.compileErr != nil {
		set(metav1.ConditionUnknown, v1alpha1.ReasonInvalidSelector, fmt.Sprintf("the policy is not enforced: %v", o.compileErr))
		return
	}
	if o.reconcileErr != nil {
		keepOrUnknown(st, generation, v1alpha1.ConditionCompliant, o.reconcileErr)
		return
	}
	declared := ptr.Deref(st.ViolationCount, 0)
	if rt := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRuntimeVerified); rt != nil &&
		rt.Status == metav1.ConditionFalse && (rt.Reason == v1alpha1.ReasonListeningBeyondLoopback || rt.Reason == v1alpha1.ReasonUnexpectedClient) {
		msg := rt.Message
		if declared > 0 {
			msg += fmt.Sprintf("; besides, %d existing objects expose protected ports (status.violations)", declared)
		}
		set(metav1.ConditionFalse, rt.Reason, msg)
		return
	}
	if declared == 0 {
		set(metav1.ConditionTrue, v1alpha1.ReasonNoViolations, "no existing object exposes a protected port")
		return
	}
	what := "1 existing object exposes a protected port"
	if declared > 1 {
		what = fmt.Sprintf("%d existing objects expose protected ports; the first", declared)
	}
	set(metav1.ConditionFalse, v1alpha1.ReasonViolationsFound, what+": "+st.Violations[0].Message)
}
