package controllers

import (
	"context"
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// policiesReachedBySlice maps a hand-written EndpointSlice to the policies
// of kind that select a pod it lists by IP or names by targetRef, in any
// namespace: their audit reports it (observe). The EndpointSlice
// controller's slices are their Services' findings and map to nothing.
// When its pods cannot be read, it maps to every policy (onError).
func policiesReachedBySlice(c client.Reader, index *policyindex.Index, kind string, onError handler.MapFunc) handler.MapFunc {
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
			log.Error(err, "failed to map EndpointSlice to the policies of its pods; mapping it to every policy")
			return onError(ctx, o)
		}
		return policiesSelectingPods(index, kind, pods)
	}
}

// podsBehindService returns the pods named by the EndpointSlices that
// carry a Service's name in its namespace. Whether such a slice is the
// EndpointSlice controller's (the Service's finding) or hand-written (the
// finding of the policies of the pods it names, in any namespace) depends
// on the Service (addrindex.ControllerWritten): its selector, its type,
// its UID. So a change of the Service changes those pods' audits.
func podsBehindService(ctx context.Context, c client.Reader, svc client.Object) ([]*podview.Pod, error) {
	var slices discoveryv1.EndpointSliceList
	if err := c.List(ctx, &slices, client.InNamespace(svc.GetNamespace()), client.MatchingLabels{discoveryv1.LabelServiceName: svc.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("failed to list the EndpointSlices of service %s/%s: %w", svc.GetNamespace(), svc.GetName(), err)
	}
	var out []*podview.Pod
	for i := range slices.Items {
		pods, err := addrindex.PodsNamed(ctx, c, &slices.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, pods...)
	}
	return out, nil
}

// policiesOfService maps a Service to the policies of its own namespace
// (fallback) and to those of kind selecting the pods its slices name
// (podsBehindService); to every policy when those cannot be read.
func policiesOfService(c client.Reader, index *policyindex.Index, kind string, fallback, onError handler.MapFunc) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		pods, err := podsBehindService(ctx, c, o)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "failed to map a Service to the policies of the pods its EndpointSlices name; mapping it to every policy")
			return onError(ctx, o)
		}
		out := fallback(ctx, o)
		seen := map[reconcile.Request]bool{}
		for _, r := range out {
			seen[r] = true
		}
		for _, r := range policiesSelectingPods(index, kind, pods) {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
		return out
	}
}
