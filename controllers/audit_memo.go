package controllers

import (
	"context"
	"crypto/sha256"
	"maps"
	"slices"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
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
	m.byPolicy[p.Ref][namespace] = memoized{digest: digest, obs: obs}
	return obs, true, nil
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
	h := sha256.New()
	write := func(parts ...string) {
		for _, s := range parts {
			_, _ = h.Write([]byte(s))
			_, _ = h.Write([]byte{0})
		}
	}
	snap := &in.snap
	write(string(p.UID), strconv.FormatInt(p.Generation, 10), snap.Env.Namespace, strconv.FormatBool(snap.OwnNetworkPoliciesWritten))
	keys := slices.Sorted(maps.Keys(in.nsLabels))
	write("labels", strconv.Itoa(len(keys)))
	for _, k := range keys {
		write(k, in.nsLabels[k])
	}
	if !writeIDs(write, "pods", snap.Pods) || !writeIDs(write, "workloads", snap.Workloads) ||
		!writeIDs(write, "services", snap.Services) || !writeIDs(write, "endpointslices", snap.EndpointSlices) ||
		!writeIDs(write, "endpoints", snap.Endpoints) || !writeIDs(write, "networkpolicies", snap.NetworkPolicies) {
		return digest, false
	}
	h.Sum(digest[:0])
	return digest, true
}

// writeIDs writes a counted, sorted list of the objects' versions; false
// when one is not an API object (it has no version to name).
func writeIDs[T any](write func(...string), list string, objs []T) bool {
	ids := make([]string, 0, len(objs))
	for _, o := range objs {
		a, err := meta.Accessor(o)
		if err != nil {
			return false
		}
		ids = append(ids, a.GetNamespace()+"/"+a.GetName()+"/"+string(a.GetUID())+"/"+a.GetResourceVersion())
	}
	slices.Sort(ids)
	write(list, strconv.Itoa(len(ids)))
	write(ids...)
	return true
}
