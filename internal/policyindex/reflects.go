package policyindex

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// stamp is what tells two versions of a policy apart for compiling: its
// UID (deleted and created again) and its generation (its spec changed).
type stamp struct {
	uid        types.UID
	generation int64
}

func stampOf(o metav1.Object) stamp { return stamp{uid: o.GetUID(), generation: o.GetGeneration()} }

// Reflects reports whether the index holds exactly objs as the
// LoopbackServices of namespace, or, with namespace "", as the
// ClusterLoopbackServices: each at its UID and generation (compiled, or
// failed to compile), and no other. The index is fed by informer handlers
// of its own, which may run after a controller's handler of the same
// event: a controller that reads the index and must not act on what it
// held before can compare it with what its cache holds, and wait.
func (x *Index) Reflects(namespace string, objs []metav1.Object) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	b := &x.cluster
	if namespace != "" {
		b = x.namespaces[namespace]
	}
	held := 0
	if b != nil {
		held = len(b.stamps)
	}
	if held != len(objs) {
		return false
	}
	for _, o := range objs {
		if s, ok := b.stamps[o.GetName()]; !ok || s != stampOf(o) {
			return false
		}
	}
	return true
}

// ReflectsNamespace reports whether the index holds l as the labels of
// namespace, or, with exists false, holds no labels for it.
func (x *Index) ReflectsNamespace(namespace string, l map[string]string, exists bool) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	held, ok := x.nsLabels[namespace]
	if !exists {
		return !ok
	}
	return ok && labels.Equals(held, labels.Set(l))
}
