package clusterindex

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
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

// EndpointSlices returns the EndpointSlices of any namespace whose index
// field has value, as the cache holds them, without a copy (see
// PodsInNamespace); a reader that is not an informer cache gets a List.
func EndpointSlices(ctx context.Context, r client.Reader, field, value string) ([]*discoveryv1.EndpointSlice, error) {
	what := field + "=" + value
	if out, ok, err := fromIndex(ctx, r, &discoveryv1.EndpointSlice{}, indexPrefix+field, allPrefix+value, "the endpointslices of "+what); ok || err != nil {
		return out, err
	}
	var l discoveryv1.EndpointSliceList
	if err := r.List(ctx, &l, client.MatchingFields{field: value}); err != nil {
		return nil, fmt.Errorf("failed to list the endpointslices of %s: %w", what, err)
	}
	out := make([]*discoveryv1.EndpointSlice, len(l.Items))
	for i := range l.Items {
		out[i] = &l.Items[i]
	}
	return out, nil
}

// indexedPods reads the pod informer's index at key, or, from a reader
// that is not an informer cache, Lists with opts; what names the pods in
// errors.
func indexedPods(ctx context.Context, r client.Reader, index, key, what string, opts ...client.ListOption) ([]*corev1.Pod, error) {
	if out, ok, err := fromIndex(ctx, r, &corev1.Pod{}, index, key, "the pods of "+what); ok || err != nil {
		return out, err
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

// fromIndex reads the objects at key of the index of obj's informer; ok
// is false when r is not an informer cache (the caller Lists instead).
func fromIndex[T client.Object](ctx context.Context, r client.Reader, obj T, index, key, what string) (out []T, ok bool, err error) {
	s, err := informerOf(ctx, r, obj)
	if s == nil || err != nil {
		return nil, false, err
	}
	objs, err := s.GetIndexer().ByIndex(index, key)
	if err != nil {
		return nil, false, fmt.Errorf("failed to read %s: %w", what, err)
	}
	out = make([]T, 0, len(objs))
	for _, o := range objs {
		if t, isT := o.(T); isT {
			out = append(out, t)
		}
	}
	return out, true, nil
}

// Objects returns the objects of obj's kind in namespace ("": every
// namespace, or a cluster-scoped kind) as the cache holds them, without a
// copy (see PodsInNamespace); a reader that is not an informer cache gets
// a List into list. The audit reads every judged kind of each namespace
// this way, and each managed NetworkPolicy's closure every policy: the
// List's copies into Items were 8% of the manager's CPU at 150,000 pods.
func Objects(ctx context.Context, r client.Reader, obj client.Object, list client.ObjectList, namespace string) ([]runtime.Object, error) {
	if out, ok, err := fromStore(ctx, r, obj, namespace); ok || err != nil {
		return out, err
	}
	if err := r.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("failed to list %T: %w", list, err)
	}
	return meta.ExtractList(list)
}

// fromStore reads the informer's store: by the namespace index, or all of
// it.
func fromStore(ctx context.Context, r client.Reader, obj client.Object, namespace string) ([]runtime.Object, bool, error) {
	s, err := informerOf(ctx, r, obj)
	if s == nil || err != nil {
		return nil, false, err
	}
	var objs []any
	if namespace == "" {
		objs = s.GetStore().List()
	} else if objs, err = s.GetIndexer().ByIndex(toolscache.NamespaceIndex, namespace); err != nil {
		return nil, false, fmt.Errorf("failed to read the %T of namespace %s: %w", obj, namespace, err)
	}
	out := make([]runtime.Object, 0, len(objs))
	for _, o := range objs {
		if ro, ok := o.(runtime.Object); ok {
			out = append(out, ro)
		}
	}
	return out, true, nil
}

// informerOf returns the shared informer of obj's kind, synced; nil when r
// is not an informer cache, or its informer not a shared one (the caller
// Lists instead).
func informerOf(ctx context.Context, r client.Reader, obj client.Object) (toolscache.SharedIndexInformer, error) {
	c, isCache := r.(cache.Informers)
	if !isCache {
		return nil, nil
	}
	inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(true))
	if err != nil {
		return nil, fmt.Errorf("failed to get the informer of %T: %w", obj, err)
	}
	s, _ := inf.(toolscache.SharedIndexInformer)
	return s, nil
}
