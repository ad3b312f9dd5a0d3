package controllers

import (
	"context"
	"reflect"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites remembers the resourceVersion of each write a policy
// reconciler made (its managed NetworkPolicies and AdminNetworkPolicies,
// its policy's status), so that the watch event of that write does not
// bring the writer back for a full audit that has nothing left to do: at
// 150,000 pods each closure update of a cluster policy's NetworkPolicies
// enqueued it again, and its audits ran back to back.
//
// Only the exact version written is dropped. resourceVersions are the API
// server's, unique per write: anyone else's change, a tenant's edit of a
// managed NetworkPolicy included, has another one and is repaired at once.
// A deletion always passes.
type ownWrites struct {
	mu      sync.Mutex
	written map[ownKey]string
}

type ownKey struct {
	typ  reflect.Type
	name types.NamespacedName
}

func newOwnWrites() *ownWrites {
	return &ownWrites{written: map[ownKey]string{}}
}

func keyOf(o client.Object) ownKey {
	return ownKey{typ: reflect.TypeOf(o), name: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}
}

// record notes o's resourceVersion, as the API server returned it.
func (w *ownWrites) record(o client.Object) {
	if w == nil || o.GetResourceVersion() == "" {
		return
	}
	w.mu.Lock()
	w.written[keyOf(o)] = o.GetResourceVersion()
	w.mu.Unlock()
}

// recorded records o when err, its write's, is nil, and returns err.
func (w *ownWrites) recorded(o client.Object, err error) error {
	if err == nil {
		w.record(o)
	}
	return err
}

// mine says whether o is the version this process wrote last. The entry
// is kept until the next write or the deletion: both controllers' watches
// of NetworkPolicies see the same event, and neither may use it up for the
// other.
func (w *ownWrites) mine(o client.Object) bool {
	if w == nil || o == nil || o.GetResourceVersion() == "" {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written[keyOf(o)] == o.GetResourceVersion()
}

// forget drops what is kept of a deleted object.
func (w *ownWrites) forget(o client.Object) {
	if w == nil || o == nil {
		return
	}
	w.mu.Lock()
	delete(w.written, keyOf(o))
	w.mu.Unlock()
}

// notMine passes every event but those of this process's own writes.
func (w *ownWrites) notMine() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.mine(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.mine(e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool { w.forget(e.Object); return true },
	}
}

// client wraps c so that its writes are recorded.
func (w *ownWrites) client(c client.Client) client.Client {
	return &recordingClient{Client: c, own: w}
}

// recordingClient is a client whose creates, updates and patches, of
// objects and of their status, are recorded in own.
type recordingClient struct {
	client.Client
	own *ownWrites
}

func (c *recordingClient) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	return c.own.recorded(o, c.Client.Create(ctx, o, opts...))
}

func (c *recordingClient) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	return c.own.recorded(o, c.Client.Update(ctx, o, opts...))
}

func (c *recordingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	return c.own.recorded(o, c.Client.Patch(ctx, o, p, opts...))
}

func (c *recordingClient) Status() client.SubResourceWriter {
	return &recordingStatus{SubResourceWriter: c.Client.Status(), own: c.own}
}

type recordingStatus struct {
	client.SubResourceWriter
	own *ownWrites
}

func (s *recordingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	return s.own.recorded(o, s.SubResourceWriter.Update(ctx, o, opts...))
}

func (s *recordingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.own.recorded(o, s.SubResourceWriter.Patch(ctx, o, p, opts...))
}
