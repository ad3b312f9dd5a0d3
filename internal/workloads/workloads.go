// Package workloads lists the objects of a namespace that carry a pod
// template, for the exposure rules (rules.Cluster.Workloads): the webhook
// and the audit read them the same way.
package workloads

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

// List returns the namespace's workloads that no other judged workload
// owns (a Deployment's ReplicaSets, a CronJob's Jobs): the owner carries
// the same template and is the object to report. Ownership is verified
// against the namespace's workloads (rules.OwnedByWorkload): a workload
// with a made-up owner is returned. opts are passed to every List (e.g.
// client.UnsafeDisableDeepCopy for read-only use of a cache).
func List(ctx context.Context, c client.Reader, namespace string, opts ...client.ListOption) ([]runtime.Object, error) {
	all, err := ListAll(ctx, c, namespace, opts...)
	if err != nil {
		return nil, err
	}
	return Unowned(all, rules.NewOwners(all)), nil
}

// ListAll returns every workload of the namespace, owned or not: the
// snapshot rules.NewOwners verifies owner references against.
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

// Unowned keeps the objects not judged through a real owner among owners.
func Unowned(objs []runtime.Object, owners rules.Owners) []runtime.Object {
	var out []runtime.Object
	for _, o := range objs {
		if !rules.OwnedByWorkload(o, owners) {
			out = append(out, o)
		}
	}
	return out
}
