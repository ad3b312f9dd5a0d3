package controllers

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// nodeMateMemo keeps each policy's last node-mates with what they were
// found from: the selected pods (their names, nodes and whether they run)
// and the version of the pods that can enter other pods' network
// namespaces. A cluster policy's reconcile looked up every node of its
// thousands of pods each time (8% of the manager's CPU while 10,000
// policies were created), though neither had changed.
//
// A reconcile that reads every namespace (the first, another cluster
// policy's change, every audit interval) finds them again all the same.
//
// The version is bumped by the node-mate watches' handlers before they
// map the event to policies (bumping), and read before the cache is: a
// change the cache did not show yet to the reconcile that read version v
// is bumped past v, and its own request reconciles again.
type nodeMateMemo struct {
	version atomic.Uint64
	seed    maphash.Seed
	mu      sync.Mutex
	last    map[rules.PolicyRef]nodeMateEntry
}

type nodeMateEntry struct {
	version, digest uint64
	mates           []v1alpha1.NodeMate
}

func newNodeMateMemo() *nodeMateMemo {
	return &nodeMateMemo{seed: maphash.MakeSeed(), last: map[rules.PolicyRef]nodeMateEntry{}}
}

// digest sums a hash of each selected pod's namespace, name, node and
// whether it runs (hostnet.NodeMates reads nothing else of them), in any
// order.
func (m *nodeMateMemo) digest(pods []*podview.Pod) uint64 {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(m.seed)
	for _, p := range pods {
		h.Reset()
		h.WriteString(p.Namespace)
		h.WriteByte(0)
		h.WriteString(p.Name)
		h.WriteByte(0)
		h.WriteString(p.NodeName)
		h.WriteByte(0)
		h.WriteString(string(p.Phase))
		h.WriteByte(0)
		if p.DeletionTimestamp != nil {
			h.WriteByte(1)
		} else {
			h.WriteByte(0)
		}
		sum += h.Sum64()
	}
	return sum
}

// get returns a copy of ref's node-mates found at version from pods of
// digest.
func (m *nodeMateMemo) get(ref rules.PolicyRef, version, digest uint64) ([]v1alpha1.NodeMate, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.last[ref]
	if !ok || e.version != version || e.digest != digest {
		return nil, false
	}
	return copyNodeMates(e.mates), true
}

func (m *nodeMateMemo) put(ref rules.PolicyRef, version, digest uint64, mates []v1alpha1.NodeMate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[ref] = nodeMateEntry{version: version, digest: digest, mates: copyNodeMates(mates)}
}

// copyNodeMates copies deeply: a status patch decodes its response into
// the status in place, reusing its slices.
func copyNodeMates(in []v1alpha1.NodeMate) []v1alpha1.NodeMate {
	out := make([]v1alpha1.NodeMate, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

func (m *nodeMateMemo) forget(ref rules.PolicyRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, ref)
}

// bumping is h that first bumps the version: every event that reaches it
// (the node-mate predicate's) may change some policy's node-mates.
func (m *nodeMateMemo) bumping(h handler.EventHandler) handler.EventHandler {
	return bumpingHandler{m: m, h: h}
}

type bumpingHandler struct {
	m *nodeMateMemo
	h handler.EventHandler
}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func (b bumpingHandler) Create(ctx context.Context, e event.CreateEvent, q queue) {
	b.m.version.Add(1)
	b.h.Create(ctx, e, q)
}

func (b bumpingHandler) Update(ctx context.Context, e event.UpdateEvent, q queue) {
	b.m.version.Add(1)
	b.h.Update(ctx, e, q)
}

func (b bumpingHandler) Delete(ctx context.Context, e event.DeleteEvent, q queue) {
	b.m.version.Add(1)
	b.h.Delete(ctx, e, q)
}

func (b bumpingHandler) Generic(ctx context.Context, e event.GenericEvent, q queue) {
	b.m.version.Add(1)
	b.h.Generic(ctx, e, q)
}
