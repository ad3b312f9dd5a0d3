// Package policyindex keeps the compiled policies of the cluster in memory,
// indexed by namespace and, inside each namespace, by port (rules.Set), so
// that one admission review touches only the policies that can apply to it.
// It is fed by informer events (see Register) and read by the webhook.
package policyindex

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// Index is safe for concurrent use. Sets are rebuilt lazily on the first
// read after a change, so an initial sync of N policies costs one build.
type Index struct {
	mu         sync.RWMutex
	namespaces map[string]*bucket
	cluster    bucket
	nsLabels   map[string]labels.Set
	// errors holds policies that failed to compile (e.g. a label value
	// the schema cannot reject), by ref, for status reporting.
	errors map[rules.PolicyRef]error

	synced atomic.Bool
}

type bucket struct {
	policies map[string]*rules.Policy
	// stamps holds, by name, the UID and generation of the last object
	// stored, compiled or not (see holds and Reflects).
	stamps map[string]stamp
	set    *rules.Set // nil when stale
	// version counts changes, so that a set built outside the lock is
	// stored only if nothing changed meanwhile.
	version uint64
}

// invalidate marks the bucket's set stale; x.mu must be held for writing.
func (b *bucket) invalidate() {
	b.set = nil
	b.version++
}

// New returns an empty index.
func New() *Index {
	return &Index{
		namespaces: map[string]*bucket{},
		cluster:    bucket{policies: map[string]*rules.Policy{}},
		nsLabels:   map[string]labels.Set{},
		errors:     map[rules.PolicyRef]error{},
	}
}

// SetLoopbackService compiles and stores a LoopbackService; a compile error
// removes it from the index and is returned (and kept for Error).
func (x *Index) SetLoopbackService(lbs *v1alpha1.LoopbackService) error {
	x.mu.RLock()
	same := x.namespaces[lbs.Namespace].holds(lbs.Name, lbs)
	x.mu.RUnlock()
	if same {
		return nil
	}
	p, err := rules.Compile(lbs)
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: lbs.Namespace, Name: lbs.Name}
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.namespaces[lbs.Namespace]
	if b == nil {
		b = &bucket{policies: map[string]*rules.Policy{}}
		x.namespaces[lbs.Namespace] = b
	}
	x.store(b, ref, lbs, p, err)
	return err
}

// DeleteLoopbackService forgets a LoopbackService.
func (x *Index) DeleteLoopbackService(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: namespace, Name: name}
	delete(x.errors, ref)
	if b := x.namespaces[namespace]; b != nil {
		delete(b.policies, name)
		delete(b.stamps, name)
		b.invalidate()
		if len(b.stamps) == 0 {
			delete(x.namespaces, namespace)
		}
	}
}

// SetClusterLoopbackService compiles and stores a ClusterLoopbackService.
func (x *Index) SetClusterLoopbackService(clbs *v1alpha1.ClusterLoopbackService) error {
	x.mu.RLock()
	same := x.cluster.holds(clbs.Name, clbs)
	x.mu.RUnlock()
	if same {
		return nil
	}
	p, err := rules.CompileCluster(clbs)
	ref := rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: clbs.Name}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.store(&x.cluster, ref, clbs, p, err)
	return err
}

// DeleteClusterLoopbackService forgets a ClusterLoopbackService.
func (x *Index) DeleteClusterLoopbackService(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.errors, rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: name})
	delete(x.cluster.policies, name)
	delete(x.cluster.stamps, name)
	x.cluster.invalidate()
}

// holds reports whether b already holds o at its UID and generation,
// compiled or failed to compile (its error kept). Compiling reads only the spec, and every spec change bumps
// the generation, so a status write (one per reconcile) or a metadata edit
// needs neither a compile nor a rebuild of the bucket's set. An object
// without a generation is not from the API server: it is always compiled.
// x.mu must be held; b may be nil. Checked under the read lock and stored
// under the write lock: this relies, as the index always has, on one
// writer per kind (the informer's handler, which delivers events in order).
func (b *bucket) holds(name string, o metav1.Object) bool {
	if b == nil || o.GetGeneration() == 0 {
		return false
	}
	s, ok := b.stamps[name]
	return ok && s == stampOf(o)
}

func (x *Index) store(b *bucket, ref rules.PolicyRef, o metav1.Object, p *rules.Policy, err error) {
	b.invalidate()
	if b.stamps == nil {
		b.stamps = map[string]stamp{}
	}
	b.stamps[ref.Name] = stampOf(o)
	if err != nil {
		x.errors[ref] = err
		delete(b.policies, ref.Name)
		return
	}
	delete(x.errors, ref)
	b.policies[ref.Name] = p
}

// SetNamespaceLabels records a namespace's labels for cluster policies.
func (x *Index) SetNamespaceLabels(namespace string, l map[string]string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.nsLabels[namespace] = labels.Set(l)
}

// DeleteNamespace forgets a namespace's labels.
func (x *Index) DeleteNamespace(namespace string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.nsLabels, namespace)
}

// Env returns what a review in the namespace needs: the namespace's own
// policies and the cluster policies, with the namespace's labels. A stale
// set is rebuilt outside the lock (10,000 policies take milliseconds), so
// reviews in other namespaces never wait for it.
func (x *Index) Env(namespace string) *rules.Env {
	env, _, _ := x.env(namespace, nil)
	return env
}

// LabelsFunc reads a namespace's labels from the API server; nil labels
// and no error when the namespace does not exist.
type LabelsFunc func(ctx context.Context, namespace string) (map[string]string, error)

// EnvLive is Env for an admission review. When a cluster policy exists
// and the index has not seen the namespace yet, its labels are read with
// get: a namespace created and written to at once (kubectl create
// namespace and apply, helm --create-namespace) reaches the webhook before
// its informer event reaches the index, and without its labels no cluster
// policy would select it. A namespace the index knows costs no call; a
// relabelled one is judged by the labels the index has (the API server's
// own namespaceSelector matching reads a cache too).
func (x *Index) EnvLive(ctx context.Context, namespace string, get LabelsFunc) (*rules.Env, error) {
	env, known, clusterPolicies := x.env(namespace, nil)
	if known || !clusterPolicies || namespace == "" || get == nil {
		return env, nil
	}
	l, err := get(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("failed to read the labels of namespace %q, which loopguard has not seen yet: %w", namespace, err)
	}
	env, _, _ = x.env(namespace, labels.Set(l))
	return env, nil
}

// env builds the Env of namespace, with labels l when l is not nil; known
// says whether the index has the namespace's labels, clusterPolicies
// whether any cluster policy is stored.
func (x *Index) env(namespace string, l labels.Set) (env *rules.Env, known, clusterPolicies bool) {
	x.mu.RLock()
	nsb := x.namespaces[namespace]
	nsSet, nsSnap := x.snapshot(nsb)
	clusterSet, clusterSnap := x.snapshot(&x.cluster)
	nsLabels, known := x.nsLabels[namespace]
	clusterPolicies = len(x.cluster.policies) > 0
	x.mu.RUnlock()
	if l != nil {
		nsLabels = l
	}
	if nsSnap != nil {
		nsSet = x.build(nsSnap)
	}
	if clusterSnap != nil {
		clusterSet = x.build(clusterSnap)
	}
	return rules.NewEnv(namespace, nsLabels, nsSet, clusterSet), known, clusterPolicies
}

// staleBucket is what building a stale bucket's set needs.
type staleBucket struct {
	bucket   *bucket
	version  uint64
	policies []*rules.Policy
}

// snapshot returns b's set, or, when it is stale, a copy of its policies
// to build one from; x.mu must be held for reading.
func (x *Index) snapshot(b *bucket) (*rules.Set, *staleBucket) {
	if b == nil {
		return nil, nil
	}
	if b.set != nil {
		return b.set, nil
	}
	ps := make([]*rules.Policy, 0, len(b.policies))
	for _, p := range b.policies {
		ps = append(ps, p)
	}
	// A stable order gives stable messages and findings.
	sort.Slice(ps, func(i, j int) bool { return ps[i].Ref.String() < ps[j].Ref.String() })
	return nil, &staleBucket{bucket: b, version: b.version, policies: ps}
}

// build indexes a snapshot and stores the set unless the bucket changed
// meanwhile (then the next review builds again; this one uses what it
// built, which reflects the index as of its arrival).
func (x *Index) build(snap *staleBucket) *rules.Set {
	set := rules.NewSet(snap.policies)
	x.mu.Lock()
	if snap.bucket.version == snap.version && snap.bucket.set == nil {
		snap.bucket.set = set
	}
	x.mu.Unlock()
	return set
}

// Error returns the compile error of a policy, if it has one.
func (x *Index) Error(ref rules.PolicyRef) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.errors[ref]
}

// Count returns the number of compiled policies.
func (x *Index) Count() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := len(x.cluster.policies)
	for _, b := range x.namespaces {
		n += len(b.policies)
	}
	return n
}

// MarkSynced records that every informer feeding the index has synced.
func (x *Index) MarkSynced() { x.synced.Store(true) }

// Synced reports whether the index reflects the cluster.
func (x *Index) Synced() bool { return x.synced.Load() }

// ReadyCheck is a healthz.Checker that fails until the index has synced, so
// that no replica receives reviews before it knows every policy.
func ReadyCheck(x *Index) func(*http.Request) error {
	return func(*http.Request) error {
		if !x.Synced() {
			return errors.New("policy index not synced")
		}
		return nil
	}
}
