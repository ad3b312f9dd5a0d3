// Package policyindex keeps the compiled policies of the cluster in memory,
// indexed by namespace and, inside each namespace, by port (rules.Set), so
// that one admission review touches only the policies that can apply to it.
// It is fed by informer events (see Register) and read by the webhook.
package policyindex

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

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
	set      *rules.Set // nil when stale
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
	p, err := rules.Compile(lbs)
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: lbs.Namespace, Name: lbs.Name}
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.namespaces[lbs.Namespace]
	if b == nil {
		b = &bucket{policies: map[string]*rules.Policy{}}
		x.namespaces[lbs.Namespace] = b
	}
	x.store(b, ref, p, err)
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
		b.set = nil
		if len(b.policies) == 0 {
			delete(x.namespaces, namespace)
		}
	}
}

// SetClusterLoopbackService compiles and stores a ClusterLoopbackService.
func (x *Index) SetClusterLoopbackService(clbs *v1alpha1.ClusterLoopbackService) error {
	p, err := rules.CompileCluster(clbs)
	ref := rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: clbs.Name}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.store(&x.cluster, ref, p, err)
	return err
}

// DeleteClusterLoopbackService forgets a ClusterLoopbackService.
func (x *Index) DeleteClusterLoopbackService(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.errors, rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: name})
	delete(x.cluster.policies, name)
	x.cluster.set = nil
}

func (x *Index) store(b *bucket, ref rules.PolicyRef, p *rules.Policy, err error) {
	b.set = nil
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
// policies and the cluster policies, with the namespace's labels.
func (x *Index) Env(namespace string) *rules.Env {
	x.mu.RLock()
	nsb := x.namespaces[namespace]
	nsSet, clusterSet := setOf(nsb), x.cluster.set
	stale := (nsb != nil && nsSet == nil) || clusterSet == nil
	nsLabels := x.nsLabels[namespace]
	x.mu.RUnlock()
	if stale {
		x.mu.Lock()
		nsSet = x.rebuild(x.namespaces[namespace])
		clusterSet = x.rebuild(&x.cluster)
		x.mu.Unlock()
	}
	env := &rules.Env{Namespace: namespace, NamespaceLabels: nsLabels}
	if nsSet.Len() > 0 {
		env.Sets = append(env.Sets, nsSet)
	}
	if clusterSet.Len() > 0 {
		env.Sets = append(env.Sets, clusterSet)
	}
	return env
}

func setOf(b *bucket) *rules.Set {
	if b == nil {
		return nil
	}
	return b.set
}

// rebuild returns b's set, building it if stale; x.mu must be held.
func (x *Index) rebuild(b *bucket) *rules.Set {
	if b == nil {
		return nil
	}
	if b.set == nil {
		ps := make([]*rules.Policy, 0, len(b.policies))
		for _, p := range b.policies {
			ps = append(ps, p)
		}
		b.set = rules.NewSet(ps)
	}
	return b.set
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
