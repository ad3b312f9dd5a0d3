package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// startSource enqueues the registration once when the controller starts,
// so that an install with no policy yet still gets its (empty) registration
// checked, and a leader that takes over re-registers at once.
func startSource(name string) source.TypedSource[reconcile.Request] {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
		return nil
	})
}
