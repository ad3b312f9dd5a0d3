package controllers

import (
	"context"

	discoveryv1 "k8s.io/api/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// policiesReachedBySlice maps a hand-written EndpointSlice to the policies
// of kind that select a pod it lists by IP or names by targetRef, in any
// namespace: their audit reports it (observe). The EndpointSlice
// controller's slices are their Services' findings and map to nothing.
func policiesReachedBySlice(c client.Reader, index *policyindex.Index, kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil
		}
		log := ctrl.LoggerFrom(ctx).WithValues("endpointslice", client.ObjectKeyFromObject(s))
		if written, err := addrindex.ControllerWritten(ctx, c, s); err != nil {
			log.Error(err, "failed to tell who wrote the EndpointSlice; mapping it as hand-written")
		} else if written {
			return nil
		}
		pods, err := addrindex.PodsNamed(ctx, c, s)
		if err != nil {
			log.Error(err, "failed to map EndpointSlice to the policies of its pods")
			return nil
		}
		return policiesSelectingPods(index, kind, pods)
	}
}
