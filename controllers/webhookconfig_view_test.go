package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// TestRegistrationViewCondition: the Enforced condition a policy
// reconciler writes with its status comes only from a registration that
// was written (nothing before the registration controller ran, nothing
// for a policy its last view did not hold), and a server that does not
// serve yet never turns an Enforced policy False.
func TestRegistrationViewCondition(t *testing.T) {
	policy := func(enforced metav1.ConditionStatus, readyReason string) *v1alpha1.LoopbackService {
		p := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "admin", Generation: 3}}
		if enforced != "" {
			p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionEnforced, Status: enforced, Reason: "Registered"})
		}
		if readyReason != "" {
			p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: readyReason, Message: "bad selector"})
		}
		return p
	}
	key := webhookconfig.Key{Namespace: "shop", Name: "admin"}
	covered := map[webhookconfig.Key]webhookconfig.Coverage{key: {Covered: true, Reason: "Registered", Message: "judged"}}
	gen3 := map[webhookconfig.Key]int64{key: 3}
	for _, tc := range []struct {
		name       string
		view       func() *RegistrationView
		policy     *v1alpha1.LoopbackService
		want       metav1.ConditionStatus // "" : no condition from the view
		wantReason string
	}{
		{"no view", func() *RegistrationView { return nil }, policy("", ""), "", ""},
		{"registration not run yet", NewRegistrationView, policy("", ""), "", ""},
		{"covered", func() *RegistrationView { v := NewRegistrationView(); v.setCoverage(covered, gen3); return v }, policy("", ""), metav1.ConditionTrue, "Registered"},
		{"not in the last view", func() *RegistrationView {
			v := NewRegistrationView()
			v.setCoverage(map[webhookconfig.Key]webhookconfig.Coverage{}, nil)
			return v
		}, policy("", ""), "", ""},
		{"covered, invalid selector", func() *RegistrationView { v := NewRegistrationView(); v.setCoverage(covered, gen3); return v },
			policy("", v1alpha1.ReasonInvalidSelector), metav1.ConditionFalse, v1alpha1.ReasonInvalidSelector},
		{"not serving, already enforced", func() *RegistrationView {
			v := NewRegistrationView()
			v.setPending(v1alpha1.ReasonWebhookPending, "not serving")
			return v
		}, policy(metav1.ConditionTrue, ""), "", ""},
		{"not serving, new policy", func() *RegistrationView {
			v := NewRegistrationView()
			v.setPending(v1alpha1.ReasonWebhookPending, "not serving")
			return v
		}, policy("", ""), metav1.ConditionFalse, v1alpha1.ReasonWebhookPending},
		{"configuration missing, enforced", func() *RegistrationView {
			v := NewRegistrationView()
			v.setPending(v1alpha1.ReasonWebhookConfigurationMissing, "gone")
			return v
		}, policy(metav1.ConditionTrue, ""), metav1.ConditionFalse, v1alpha1.ReasonWebhookConfigurationMissing},
		// A cluster policy's selector changed (generation 3) after the
		// registration covered its generation 2: that coverage says
		// nothing of the new selector's namespaces.
		{"covered at an older generation", func() *RegistrationView {
			v := NewRegistrationView()
			v.setCoverage(covered, map[webhookconfig.Key]int64{key: 2})
			return v
		}, policy(metav1.ConditionTrue, ""), "", ""},
		{"pending, then written", func() *RegistrationView {
			v := NewRegistrationView()
			v.setPending(v1alpha1.ReasonWebhookPending, "not serving")
			v.setCoverage(covered, gen3)
			return v
		}, policy("", ""), metav1.ConditionTrue, "Registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := tc.view().condition(tc.policy, &tc.policy.Status)
			if tc.want == "" {
				if ok {
					t.Fatalf("condition %+v, want none (keep the status as it is)", c)
				}
				return
			}
			if !ok || c.Type != v1alpha1.ConditionEnforced || c.Status != tc.want || c.Reason != tc.wantReason || c.ObservedGeneration != 3 {
				t.Fatalf("condition %+v (%v), want Enforced %s %s at generation 3", c, ok, tc.want, tc.wantReason)
			}
		})
	}
}
