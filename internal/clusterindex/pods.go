package clusterindex

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/podview"
)

// PodsInNamespace returns the pods of a namespace as the cache holds them
// (podview.Pods), without a copy: a List copies every pod into its Items,
// and a cluster policy's reconcile reads its namespaces' pods every time
// (measured at 150,000 pods: 100 MB of live heap in such slices, and the
// garbage collector half the manager's CPU). The pods are shared with the
// cache: callers read them and never write. A reader that is not an
// informer cache (a client in a unit test) gets a List, converted.
//
// Pods are read only through this package: the cache holds podview.Pods,
// and controller-runtime's cache reader refuses a Get or List of
// corev1.Pods (only when a pod matches).
func PodsInNamespace(ctx context.Context, r client.Reader, namespace string) ([]*podview.Pod, error) {
	if out, ok, err := fromIndex(ctx, r, podExemplar, podview.From, toolscache.NamespaceIndex, namespace); ok || err != nil {
		return out, readErr(err, "the pods of namespace ", namespace, "")
	}
	return listPods(ctx, r, "namespace "+namespace, client.InNamespace(namespace))
}

// Exemplars of the kinds read here, to find their informers by: the
// cache's GetInformer only reads them, and a new one for each read was
// most of what a read allocated.
var (
	podExemplar   client.Object = &corev1.Pod{}
	sliceExemplar client.Object = &discoveryv1.EndpointSlice{}
)

// readErr describes a failed index read, built only for a failure: the
// reads are on the hot paths of every policy event.
func readErr(err error, what, key, value string) error {
	if err == nil {
		return nil
	}
	if value != "" {
		key += "=" + value
	}
	return fmt.Errorf("failed to read %s%s: %w", what, key, err)
}

// PodsMatching returns the pods of a namespace whose labels sel matches
// (see PodsInNamespace).
func PodsMatching(ctx context.Context, r client.Reader, namespace string, sel labels.Selector) ([]*podview.Pod, error) {
	pods, err := PodsInNamespace(ctx, r, namespace)
	if err != nil {
		return nil, err
	}
	out := pods[:0:0]
	for _, p := range pods {
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Pod returns the pod namespace/name as the cache holds it, or a
// NotFound error.
func Pod(ctx context.Context, r client.Reader, namespace, name string) (*podview.Pod, error) {
	s, err := informerOf(ctx, r, podExemplar)
	if err != nil {
		return nil, err
	}
	if s == nil {
		var p corev1.Pod
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &p); err != nil {
			return nil, err
		}
		return podview.Of(&p), nil
	}
	key := toolscache.ObjectName{Namespace: namespace, Name: name}.String()
	o, ok, err := s.GetIndexer().GetByKey(key)
	if err != nil {
		return nil, fmt.Errorf("failed to read pod %s: %w", key, err)
	}
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	p, ok := podview.From(o)
	if !ok {
		return nil, fmt.Errorf("the pod cache holds a %T for %s", o, key)
	}
	return p, nil
}

// Pods returns the pods whose index field (registered by Register) has
// value, as the cache holds them, without a copy (see PodsInNamespace);
// a reader that is not an informer cache gets a List.
func Pods(ctx context.Context, r client.Reader, field, value string) ([]*podview.Pod, error) {
	if out, ok, err := fromIndex(ctx, r, podExemplar, podview.From, indexPrefix+field, allPrefix+value); ok || err != nil {
		return out, readErr(err, "the pods of ", field, value)
	}
	return listPods(ctx, r, field+"="+value, client.MatchingFields{field: value}, client.UnsafeDisableDeepCopy)
}

// EndpointSlices returns the EndpointSlices of any namespace whose index
// field has value, as the cache holds them, without a copy (see
// PodsInNamespace); a reader that is not an informer cache gets a List.
func EndpointSlices(ctx context.Context, r client.Reader, field, value string) ([]*discoveryv1.EndpointSlice, error) {
	if out, ok, err := fromIndex(ctx, r, sliceExemplar, asSlice, indexPrefix+field, allPrefix+value); ok || err != nil {
		return out, readErr(err, "the endpointslices of ", field, value)
	}
	var l discoveryv1.EndpointSliceList
	if err := r.List(ctx, &l, client.MatchingFields{field: value}); err != nil {
		return nil, fmt.Errorf("failed to list the endpointslices of %s=%s: %w", field, value, err)
	}
	out := make([]*discoveryv1.EndpointSlice, len(l.Items))
	for i := range l.Items {
		out[i] = &l.Items[i]
	}
	return out, nil
}

// listPods Lists the pods opts select from a reader that is not an
// informer cache (a client in a unit test); what names them in errors.
func listPods(ctx context.Context, r client.Reader, what string, opts ...client.ListOption) ([]*podview.Pod, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, opts...); err != nil {
		return nil, fmt.Errorf("failed to list the pods of %s: %w", what, err)
	}
	out := make([]*podview.Pod, len(pods.Items))
	for i := range pods.Items {
		out[i] = podview.Of(&pods.Items[i])
	}
	return out, nil
}

// fromIndex reads the objects at key of the index of obj's informer, as
// T (as returns false for a stored object of another type: an error, not
// an object dropped in silence); ok is false when r is not an informer
// cache (the caller Lists instead). Its errors say what failed, not what
// was read: the caller wraps them (readErr).
func fromIndex[T any](ctx context.Context, r client.Reader, obj client.Object, as func(any) (T, bool), index, key string) (out []T, ok bool, err error) {
	s, err := informerOf(ctx, r, obj)
	if s == nil || err != nil {
		return nil, false, err
	}
	objs, err := s.GetIndexer().ByIndex(index, key)
	if err != nil {
		return nil, false, err
	}
	if len(objs) == 0 {
		return nil, true, nil
	}
	out = make([]T, 0, len(objs))
	for _, o := range objs {
		t, isT := as(o)
		if !isT {
			return nil, false, fmt.Errorf("the cache holds a %T", o)
		}
		out = append(out, t)
	}
	return out, true, nil
}

func asSlice(o any) (*discoveryv1.EndpointSlice, bool) {
	s, ok := o.(*discoveryv1.EndpointSlice)
	return s, ok
}

// Object returns the object namespace/name of obj's kind as the cache
// holds it, shared with the cache: read only (see Objects for obj). A
// reader that is not an informer cache Gets it into a newObj(). A missing
// object is a NotFound error.
func Object(ctx context.Context, r client.Reader, obj client.Object, newObj func() client.Object, namespace, name string) (client.Object, error) {
	s, err := informerOf(ctx, r, obj)
	if err != nil {
		return nil, err
	}
	if s == nil {
		o := newObj()
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, o); err != nil {
			return nil, err
		}
		return o, nil
	}
	key := toolscache.ObjectName{Namespace: namespace, Name: name}.String() // as Pod keys
	o, ok, err := s.GetIndexer().GetByKey(key)
	if err != nil {
		return nil, fmt.Errorf("failed to read %T %s: %w", obj, key, err)
	}
	co, isObj := o.(client.Object)
	if !ok || !isObj || reflect.TypeOf(o) != reflect.TypeOf(obj) {
		if ok {
			return nil, fmt.Errorf("the cache holds a %T for %s, not a %T", o, key, obj)
		}
		kind := strings.ToLower(reflect.TypeOf(obj).Elem().Name())
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: kind}, name)
	}
	return co, nil
}

// Objects returns the objects of obj's kind in namespace ("": every
// namespace, or a cluster-scoped kind) as the cache holds them, without a
// copy (see PodsInNamespace); a reader that is not an informer cache gets
// a List into a newList(). The audit reads every judged kind of each
// namespace this way, and each managed NetworkPolicy's closure every
// policy: the List's copies into Items were 8% of the manager's CPU at
// 150,000 pods. obj only names the kind, and is never written: pass one
// made once (kinds.Kind.Exemplar), not a new one for each read.
func Objects(ctx context.Context, r client.Reader, obj client.Object, newList func() client.ObjectList, namespace string) ([]runtime.Object, error) {
	if out, ok, err := fromStore(ctx, r, obj, namespace); ok || err != nil {
		return out, err
	}
	list := newList()
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

// untilSynced is made once: the option and its slice were two of the six
// allocations of a read.
var untilSynced = []cache.InformerGetOption{cache.BlockUntilSynced(true)}

// informerOf returns the shared informer of obj's kind, synced; nil when r
// is not an informer cache (the caller Lists instead).
func informerOf(ctx context.Context, r client.Reader, obj client.Object) (toolscache.SharedIndexInformer, error) {
	c, isCache := r.(cache.Informers)
	if !isCache {
		return nil, nil
	}
	inf, err := c.GetInformer(ctx, obj, untilSynced...)
	if err != nil {
		return nil, fmt.Errorf("failed to get the informer of %T: %w", obj, err)
	}
	s, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		// A List through this cache would fail on the podview.Pods it
		// holds, once one matched: say so now (a multi-namespace cache, say).
		return nil, fmt.Errorf("the informer of %T is a %T, not a shared index informer", obj, inf)
	}
	if !s.HasSynced() {
		// GetInformer waits only for a started cache: an empty store read
		// as "no pods, no policies" would skip what they ask for.
		return nil, fmt.Errorf("the cache of %T has not synced (not started yet?)", obj)
	}
	return s, nil
}
