package controllers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// setReadyCondition sets Ready: True when every phase ran in every
// namespace; False when the policy does not compile, a phase failed, or
// some namespaces failed (the others are enforced).
func setReadyCondition(st *v1alpha1.LoopbackServiceStatus, generation int64, o *outcome) {
	switch {
	case o.compileErr != nil:
		setCondition(st, generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector,
			fmt.Sprintf("the policy is not enforced: %v", o.compileErr))
	case o.reconcileErr != nil:
		setCondition(st, generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonReconcileError, o.reconcileErr.Error())
	case len(o.failures) > 0:
		setCondition(st, generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPartiallyReconciled, o.partialFailureMessage())
	default:
		setCondition(st, generation, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReconciled,
			fmt.Sprintf("enforcing %s on %d matched pods", o.protected, o.matchedPods))
	}
}
