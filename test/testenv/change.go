package testenv

import (
	"context"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Change reads obj afresh, applies mutate and updates it, again on a
// conflict. A test's edit of an object something else also writes (a
// policy's status, a Deployment's status) must not fail because that
// writer came between the read and the update.
func (e *Env) Change(ctx context.Context, obj client.Object, mutate func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return e.Client.Update(ctx, obj)
	})
}
