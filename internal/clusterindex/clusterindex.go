// Package clusterindex registers cache field indexes that answer only
// cluster-wide lookups, and reads pods and EndpointSlices from the
// cache's indexes without copying them (PodsInNamespace, Pods,
// EndpointSlices).
//
// controller-runtime's FieldIndexer stores each value of a namespaced object
// twice, under its namespace and under all namespaces, and a value that
// only one object has (a pod's IP, a namespace's pods on one node) costs an
// index set of its own. For loopguard's two dense pod indexes that was
// about 450 bytes a pod, 70 MB of live heap at 150,000 pods, for lookups
// it never makes: it looks pods up by IP and by node across namespaces.
package clusterindex

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The names controller-runtime's cache reader looks a field index up by
// (FieldIndexName and KeyToNamespacedKey of its internal package):
// List(..., client.MatchingFields{field: v}) without a namespace reads
// the informer index "field:"+field at key "__all_namespaces/"+v. A
// lookup with client.InNamespace finds nothing in these indexes. Should
// controller-runtime rename them, every List through an index of this
// package fails ("index with name ... does not exist"), which the
// manager's tests see at once.
const (
	indexPrefix = "field:"
	allPrefix   = "__all_namespaces/"
)

// Register adds to c's informer for obj the index field, whose values
// extract gives, for lookups across all namespaces with
// client.MatchingFields.
func Register(ctx context.Context, c cache.Cache, obj client.Object, field string, extract client.IndexerFunc) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("failed to get the informer for %T: %w", obj, err)
	}
	return inf.AddIndexers(toolscache.Indexers{indexPrefix + field: func(raw any) ([]string, error) {
		o, ok := raw.(client.Object)
		if !ok {
			return nil, fmt.Errorf("index %s: %T is not an object", field, raw)
		}
		vals := extract(o)
		keys := make([]string, len(vals))
		for i, v := range vals {
			keys[i] = allPrefix + v
		}
		return keys, nil
	}})
}
