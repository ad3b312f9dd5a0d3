package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// indexLagRetry is how soon a reconcile that found the policy index
// behind the cache runs again: the index's handler runs within
// milliseconds of the controller's.
const indexLagRetry = 50 * time.Millisecond

// indexReflects reports whether the policy index holds what the cache
// holds for namespaces (their LoopbackServices and labels) and, when any
// namespace was read, for the cluster policies. The index is fed by
// informer handlers of its own, which may run after a controller's handler
// for the same event: a reconcile that read the index must not report
// what it held before.
func indexReflects(ctx context.Context, reader client.Reader, index *policyindex.Index, namespaces map[string]bool) (bool, error) {
	if len(namespaces) == 0 {
		return true, nil
	}
	clbs, err := clusterindex.Objects(ctx, reader, clbsExemplar, newCLBSList, "")
	if err != nil {
		return false, fmt.Errorf("failed to read the cluster policies: %w", err)
	}
	if !index.Reflects("", metaObjects(clbs)) {
		return false, nil
	}
	for ns := range namespaces {
		if ns == "" {
			continue // "" is the index's cluster bucket, checked above
		}
		lbs, err := clusterindex.Objects(ctx, reader, lbsExemplar, newLBSList, ns)
		if err != nil {
			return false, fmt.Errorf("failed to read the policies of namespace %s: %w", ns, err)
		}
		if !index.Reflects(ns, metaObjects(lbs)) {
			return false, nil
		}
		n, err := clusterindex.Object(ctx, reader, nsExemplar, newNamespace, "", ns) // read only
		if err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("failed to read namespace %s: %w", ns, err)
		}
		var l map[string]string
		if err == nil {
			l = n.GetLabels()
		}
		if !index.ReflectsNamespace(ns, l, err == nil) {
			return false, nil
		}
	}
	return true, nil
}

func metaObjects(objs []runtime.Object) []metav1.Object {
	out := make([]metav1.Object, 0, len(objs))
	for _, o := range objs {
		if m, ok := o.(metav1.Object); ok {
			out = append(out, m)
		}
	}
	return out
}
