package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// RegistrationView is what the last written webhook registration covers,
// shared by the registration controller (its only writer, after each
// write of the configuration) and the policy reconcilers, which carry the
// Enforced condition in their own status write: at 10,000 policies a
// separate Enforced patch per policy was a third of the policy status
// writes, and each raced the policy reconciler's for the optimistic lock.
// The registration controller still writes Enforced where the policy's
// last status does not hold it yet (a policy the view did not cover when
// its reconciler ran, a coverage change on its own), so the condition is
// exact whichever runs first.
type RegistrationView struct {
	mu sync.RWMutex
	// known: the registration controller has run on this replica.
	known    bool
	coverage map[webhookconfig.Key]webhookconfig.Coverage
	// generations are the policies' generations the coverage was
	// computed from: a cluster policy's coverage follows its selector, so
	// it says nothing of a later generation.
	generations map[webhookconfig.Key]int64
	// pendingReason and pendingMessage: nothing was registered (the
	// server does not serve yet, no CA, no configuration).
	pendingReason, pendingMessage string
}

// NewRegistrationView returns a view that knows nothing yet: until the
// registration controller runs, the policy reconcilers leave Enforced as
// it is (a new leader keeps what its predecessor reported).
func NewRegistrationView() *RegistrationView { return &RegistrationView{} }

// setCoverage records the coverage of the configuration just written.
func (v *RegistrationView) setCoverage(cov map[webhookconfig.Key]webhookconfig.Coverage, generations map[webhookconfig.Key]int64) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.known, v.coverage, v.generations, v.pendingReason, v.pendingMessage = true, cov, generations, "", ""
}

// setPending records why nothing was registered.
func (v *RegistrationView) setPending(reason, msg string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.known, v.coverage, v.generations, v.pendingReason, v.pendingMessage = true, nil, nil, reason, msg
}

// condition is the Enforced condition of obj whose status is st, and
// false when the view says nothing about it (not known yet, or obj not in
// the registration's last view: keep what st has).
func (v *RegistrationView) condition(obj enforcedObject, st *v1alpha1.LoopbackServiceStatus) (metav1.Condition, bool) {
	if v == nil {
		return metav1.Condition{}, false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.known {
		return metav1.Condition{}, false
	}
	if v.pendingReason != "" {
		return pendingCondition(obj, st, v.pendingReason, v.pendingMessage)
	}
	key := webhookconfig.Key{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	cov, ok := v.coverage[key]
	if !ok || v.generations[key] != obj.GetGeneration() {
		return metav1.Condition{}, false
	}
	return enforcedCondition(obj.GetGeneration(), st, cov), true
}

// pendingCondition is Enforced False for why nothing is registered: on
// every policy when the configuration is missing (nothing is judged),
// otherwise only on those not already Enforced (a new leader whose server
// does not serve yet leaves what its predecessor registered in place).
func pendingCondition(obj enforcedObject, st *v1alpha1.LoopbackServiceStatus, reason, msg string) (metav1.Condition, bool) {
	if reason != v1alpha1.ReasonWebhookConfigurationMissing && meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionEnforced) {
		return metav1.Condition{}, false
	}
	return metav1.Condition{Type: v1alpha1.ConditionEnforced, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: obj.GetGeneration()}, true
}
