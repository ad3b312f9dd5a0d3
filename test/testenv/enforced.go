package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Enforced reads policy (a LoopbackService or ClusterLoopbackService) afresh
// into itself and returns its Enforced condition, nil while it has none.
func (e *Env) Enforced(ctx context.Context, policy client.Object) (*metav1.Condition, error) {
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy); err != nil {
		return nil, err
	}
	switch p := policy.(type) {
	case *v1alpha1.LoopbackService:
		return meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionEnforced), nil
	case *v1alpha1.ClusterLoopbackService:
		return meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionEnforced), nil
	}
	return nil, fmt.Errorf("%T is not a policy", policy)
}

// WaitEnforced waits until policy reports Enforced True at its current
// generation: from then on the webhook registration covers its namespaces
// and the API server sends their writes to loopguard.
func (e *Env) WaitEnforced(t testing.TB, policy client.Object) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		c, err := e.Enforced(ctx, policy)
		switch {
		case err != nil:
			last = err.Error()
		case c == nil:
			last = "no " + v1alpha1.ConditionEnforced + " condition"
		case c.ObservedGeneration != policy.GetGeneration() || c.Status != metav1.ConditionTrue:
			last = fmt.Sprintf("%s=%s at generation %d (policy at %d): %s", c.Type, c.Status, c.ObservedGeneration, policy.GetGeneration(), c.Message)
		default:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("policy %s never reported Enforced: %s", client.ObjectKeyFromObject(policy), last)
	}
}
