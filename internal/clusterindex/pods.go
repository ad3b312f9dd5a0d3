package clusterindex

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PodsInNamespace returns the pods of a namespace as the cache holds them,
// without a copy: a List copies every pod's 1,240-byte struct into its
// Items, and a cluster policy's reconcile reads its namespaces' pods every
// time (measured at 150,000 pods: 100 MB of live heap in such slices, and
// the garbage collector half the manager's CPU). The pods are shared with
// the cache: callers read them and never write. A reader that is not an
// informer cache (a client in a unit test) gets a List.
func PodsInNamespace(ctx context.Context, r client.Reader, namespace string) ([]*corev1.Pod, error) {
	return indexedPods(ctx, r, toolscache.NamespaceIndex, namespace, "namespace "+namespace, client.InNamespace(namespace))
}

// Pods returns the pods whose index field (registered by Register) has
// value, as the cache holds them, without a copy (see PodsInNamespace);
// a reader that is not an informer cache gets a List.
func Pods(ctx context.Context, r client.Reader, field, value string) ([]*corev1.Pod, error) {
	return indexedPods(ctx, r, indexPrefix+field, allPrefix+value, field+"="+value, client.MatchingFields{field: value}, client.UnsafeDisableDeepCopy)
}

// indexedPods reads the pod informer's index at key, or, from a reader
// that is not an informer cache, Lists with opts; what names the pods in
// errors.
func indexedPods(ctx context.Context, r client.Reader, index, key, what string, opts ...client.ListOption) ([]*corev1.Pod, error) {
	if c, ok := r.(cache.Informers); ok {
		inf, err := c.GetInformer(ctx, &corev1.Pod{}, cache.BlockUntilSynced(true))
		if err != nil {
			return nil, fmt.Errorf("failed to get the pod informer: %w", err)
		}
		if s, ok := inf.(toolscache.SharedIndexInformer); ok {
			objs, err := s.GetIndexer().ByIndex(index, key)
			if err != nil {
				return nil, fmt.Errorf("failed to read the pods of %s: %w", what, err)
			}
			out := make([]*corev1.Pod, 0, len(objs))
			for _, o := range objs {
				if p, ok := o.(*corev1.Pod); ok {
					out = append(out, p)
				}
			}
			return out, nil
		}
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, opts...); err != nil {
		return nil, fmt.Errorf("failed to list the pods of %s: %w", what, err)
	}
	out := make([]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		out[i] = &pods.Items[i]
	}
	return out, nil
}
