// Package workloads lists the objects of a namespace that carry a pod
// template (the workloads of internal/kinds), for the exposure rules
// (rules.Snapshot.Workloads).
package workloads

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/kinds"
)

// ListAll returns every workload of the namespace, owned or not
// (rules.Snapshot.Workloads: the rules verify owner references against
// them). opts are passed to every List (e.g. client.UnsafeDisableDeepCopy
// for read-only use of a cache).
func ListAll(ctx context.Context, c client.Reader, namespace string, opts ...client.ListOption) ([]runtime.Object, error) {
	opts = append([]client.ListOption{client.InNamespace(namespace)}, opts...)
	var out []runtime.Object
	for _, k := range kinds.Workloads() {
		l := k.NewList()
		if err := c.List(ctx, l, opts...); err != nil {
			return nil, fmt.Errorf("failed to list %T: %w", l, err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, fmt.Errorf("failed to read %T: %w", l, err)
		}
		out = append(out, items...)
	}
	return out, nil
}
