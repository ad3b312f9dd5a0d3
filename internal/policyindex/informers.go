package policyindex

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Register feeds the index from the manager's informers (LoopbackServices,
// ClusterLoopbackServices and Namespaces) and marks it synced once all of
// them have synced. It returns once the handlers are added; syncing goes on
// with the cache.
func Register(ctx context.Context, c cache.Cache, x *Index, log logr.Logger) error {
	var regs []toolscache.ResourceEventHandlerRegistration
	add := func(obj client.Object, set func(any), del func(any)) error {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("failed to get informer for %T: %w", obj, err)
		}
		reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    set,
			UpdateFunc: func(_, o any) { set(o) },
			DeleteFunc: func(o any) {
				if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = t.Obj
				}
				del(o)
			},
		})
		if err != nil {
			return fmt.Errorf("failed to add handler for %T: %w", obj, err)
		}
		regs = append(regs, reg)
		return nil
	}
	if err := add(&v1alpha1.LoopbackService{},
		func(o any) {
			if lbs, ok := o.(*v1alpha1.LoopbackService); ok {
				if err := x.SetLoopbackService(lbs); err != nil {
					log.Error(err, "policy does not compile; it is not enforced until fixed")
				}
			}
		},
		func(o any) {
			if lbs, ok := o.(*v1alpha1.LoopbackService); ok {
				x.DeleteLoopbackService(lbs.Namespace, lbs.Name)
			}
		}); err != nil {
		return err
	}
	if err := add(&v1alpha1.ClusterLoopbackService{},
		func(o any) {
			if clbs, ok := o.(*v1alpha1.ClusterLoopbackService); ok {
				if err := x.SetClusterLoopbackService(clbs); err != nil {
					log.Error(err, "policy does not compile; it is not enforced until fixed")
				}
			}
		},
		func(o any) {
			if clbs, ok := o.(*v1alpha1.ClusterLoopbackService); ok {
				x.DeleteClusterLoopbackService(clbs.Name)
			}
		}); err != nil {
		return err
	}
	if err := add(&corev1.Namespace{},
		func(o any) {
			if ns, ok := o.(*corev1.Namespace); ok {
				x.SetNamespaceLabels(ns.Name, ns.Labels)
			}
		},
		func(o any) {
			if ns, ok := o.(*corev1.Namespace); ok {
				x.DeleteNamespace(ns.Name)
			}
		}); err != nil {
		return err
	}
	go func() {
		synced := make([]toolscache.InformerSynced, len(regs))
		for i, r := range regs {
			synced[i] = r.HasSynced
		}
		if toolscache.WaitForCacheSync(ctx.Done(), synced...) {
			x.MarkSynced()
			log.Info("policy index synced", "policies", x.Count())
		}
	}()
	return nil
}
