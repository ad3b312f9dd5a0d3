package controllers

import (
	"context"
	"crypto/sha256"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/rules"
)

// auditMemo keeps each policy's last audit of each namespace with a digest
// of everything that audit read (auditInputs.digest), so that a reconcile
// runs the engine again only over the namespaces whose inputs changed. A
// cluster policy is reconciled on any change in any of its namespaces;
// auditing all of them each time made its reconciles grow with the
// cluster (54% of the manager's CPU at 50,000 pods). Gathering the inputs
// stays: the digest is of what the cache holds now, never of what an
// event said, so no event order can make a reused audit stale.
type auditMemo struct {
	mu       sync.Mutex
	byPolicy map[rules.PolicyRef]map[string]memoized
}

type memoized struct {
	digest [sha256.Size]byte
	obs    *observation
	// uid and generation of the policy audited (also in the digest), for
	// cached, which computes no digest.
	uid        types.UID
	generation int64
}

func newAuditMemo() *auditMemo {
	return &auditMemo{byPolicy: map[rules.PolicyRef]map[string]memoized{}}
}

// observe is observe through the memo; audited says whether the engine
// ran. The observation returned and kept has no judged objects (the
// policy reconcilers do not read them); it keeps the selected pods, the
// cache's own objects, until the next audit of the namespace.
func (m *auditMemo) observe(ctx context.Context, c client.Reader, p *rules.Policy, namespace string, nsLabels labels.Set) (obs *observation, audited bool, err error) {
	in, err := gatherAudit(ctx, c, p, namespace, nsLabels)
	if err != nil {
		return nil, false, err
	}
	digest, keep := in.digest(p)
	m.mu.Lock()
	e, ok := m.byPolicy[p.Ref][namespace]
	m.mu.Unlock()
	if keep && ok && e.digest == digest {
		return e.obs, false, nil
	}
	obs = in.audit()
	obs.judged = nil
	if !keep {
		return obs, true, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byPolicy[p.Ref] == nil {
		m.byPolicy[p.Ref] = map[string]memoized{}
	}
	m.byPolicy[p.Ref][namespace] = memoized{digest: digest, obs: obs, uid: p.UID, generation: p.Generation}
	return obs, true, nil
}

// cached is p's last audit of namespace, without reading what it read:
// for a namespace no event has marked since (dirty.go). False when there
// is none of p's UID and generation.
func (m *auditMemo) cached(p *rules.Policy, namespace string) (*observation, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byPolicy[p.Ref][namespace]
	if !ok || e.uid != p.UID || e.generation != p.Generation {
		return nil, false
	}
	return e.obs, true
}

// retain forgets ref's audits of namespaces other than keep.
func (m *auditMemo) retain(ref rules.PolicyRef, keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ns := range m.byPolicy[ref] {
		if !keep[ns] {
			delete(m.byPolicy[ref], ns)
		}
	}
}

// forget drops a policy's audits (it was deleted, or does not compile).
func (m *auditMemo) forget(ref rules.PolicyRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byPolicy, ref)
}

// digest is a SHA-256 of everything audit reads: the policy (its UID and
// generation: the compiled policy is a function of its spec), the
// namespace and its labels, and each object of the snapshot by its list,
// UID and resourceVersion (which changes with every write of the object),
// sorted, since the cache lists in no fixed order. Every string is
// NUL-terminated and every list counted, so no two inputs share a digest
// by concatenation (names, label keys and values cannot hold NUL). ok is
// false when an input has no version to name: such an audit is not kept.
func (in *auditInputs) digest(p *rules.Policy) (digest [sha256.Size]byte, ok bool) {
	// Parts go through one buffer, hashed as it fills: a write to the hash
	// per part converted each part to a new []byte.
	h := sha256.New()
	buf := make([]byte, 0, 2048)
	put := func(s string) {
		if len(buf)+len(s) >= cap(buf) {
			_, _ = h.Write(buf)
			buf = buf[:0]
		}
		buf = append(append(buf, s...), 0)
	}
	write := func(parts ...string) {
		for _, s := range parts {
			put(s)
		}
	}
	snap := &in.snap
	write(string(p.UID), strconv.FormatInt(p.Generation, 10), snap.Env.Namespace, strconv.FormatBool(snap.OwnNetworkPoliciesWritten))
	keys := slices.Sorted(maps.Keys(in.nsLabels))
	write("labels", strconv.Itoa(len(keys)))
	for _, k := range keys {
		write(k, in.nsLabels[k])
	}
	if !writeIDs(put, "pods", snap.Pods) || !writeIDs(put, "workloads", snap.Workloads) ||
		!writeIDs(put, "services", snap.Services) || !writeIDs(put, "endpointslices", snap.EndpointSlices) ||
		!writeIDs(put, "endpoints", snap.Endpoints) || !writeIDs(put, "networkpolicies", snap.NetworkPolicies) {
		return digest, false
	}
	_, _ = h.Write(buf)
	h.Sum(digest[:0])
	return digest, true
}

// writeIDs writes a counted, sorted list of the objects' versions; false
// when one is not an API object (it has no version to name). The parts are
// written apart, NUL-terminated, rather than joined: joining them was 7% of
// the manager's CPU at 150,000 pods.
func writeIDs[T any](put func(string), list string, objs []T) bool {
	type id struct{ ns, name, uid, rv string }
	ids := make([]id, 0, len(objs))
	for _, o := range objs {
		a, err := meta.Accessor(o)
		if err != nil {
			return false
		}
		ids = append(ids, id{a.GetNamespace(), a.GetName(), string(a.GetUID()), a.GetResourceVersion()})
	}
	slices.SortFunc(ids, func(a, b id) int {
		if c := strings.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := strings.Compare(a.uid, b.uid); c != 0 {
			return c
		}
		return strings.Compare(a.rv, b.rv)
	})
	put(list)
	put(strconv.Itoa(len(ids)))
	for _, i := range ids {
		put(i.ns)
		put(i.name)
		put(i.uid)
		put(i.rv)
	}
	return true
}
