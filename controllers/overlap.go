package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// Managed NetworkPolicies are a union: each must keep closed the ports of
// every policy whose pods may be its pods (netpol.Closed). What follows
// gathers, from the cache, the policies applying in a namespace, and keeps
// the managed NetworkPolicies current: a policy's spec change, a change of
// a namespace's labels, or a change of a managed NetworkPolicy brings the
// policies it may overlap to reconcile again.

// policyCompiler compiles policies read from the cache, reusing the
// webhook's index as a compile cache when it holds the same generation.
// The cache, not the index, says which policies exist: it is updated
// before any handler runs, the index by a handler of its own that may run
// after this controller's.
type policyCompiler struct {
	reader   client.Reader
	index    *policyindex.Index
	compiled map[rules.PolicyRef]*rules.Policy
	ns       string
}

func newPolicyCompiler(reader client.Reader, index *policyindex.Index, ns string) *policyCompiler {
	pc := &policyCompiler{reader: reader, index: index, ns: ns, compiled: map[rules.PolicyRef]*rules.Policy{}}
	if index != nil {
		for _, s := range index.Env(ns).Sets {
			for _, p := range s.Policies() {
				pc.compiled[p.Ref] = p
			}
		}
	}
	return pc
}

func (pc *policyCompiler) cached(ref rules.PolicyRef, o client.Object) *rules.Policy {
	if p := pc.compiled[ref]; p != nil && p.UID == o.GetUID() && p.Generation == o.GetGeneration() {
		return p
	}
	return nil
}

func (pc *policyCompiler) lbs(lbs *v1alpha1.LoopbackService) *rules.Policy {
	if p := pc.cached(rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: lbs.Namespace, Name: lbs.Name}, lbs); p != nil {
		return p
	}
	p, err := rules.Compile(lbs)
	if err != nil {
		return nil // not enforced, its status says why
	}
	return p
}

func (pc *policyCompiler) clbs(clbs *v1alpha1.ClusterLoopbackService) *rules.Policy {
	if p := pc.cached(rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: clbs.Name}, clbs); p != nil {
		return p
	}
	p, err := rules.CompileCluster(clbs)
	if err != nil {
		return nil
	}
	return p
}

// applyingPolicies returns every policy applying in the namespace: its
// LoopbackServices and the ClusterLoopbackServices selecting it, whatever
// their mode or action (each declares ports protected).
func applyingPolicies(ctx context.Context, reader client.Reader, index *policyindex.Index, ns string, nsLabels labels.Set) ([]*rules.Policy, error) {
	pc := newPolicyCompiler(reader, index, ns)
	// Read only, so from the cache's store, without copies: every managed
	// NetworkPolicy's reconcile reads every cluster policy.
	lbss, err := clusterindex.Objects(ctx, reader, lbsExemplar, newLBSList, ns)
	if err != nil {
		return nil, fmt.Errorf("failed to list LoopbackServices: %w", err)
	}
	var out []*rules.Policy
	for _, o := range lbss {
		if l, ok := o.(*v1alpha1.LoopbackService); ok {
			if p := pc.lbs(l); p != nil {
				out = append(out, p)
			}
		}
	}
	clbss, err := clusterindex.Objects(ctx, reader, clbsExemplar, newCLBSList, "")
	if err != nil {
		return nil, fmt.Errorf("failed to list ClusterLoopbackServices: %w", err)
	}
	for _, o := range clbss {
		if c, ok := o.(*v1alpha1.ClusterLoopbackService); ok {
			if p := pc.clbs(c); p != nil && p.AppliesToNamespace(ns, nsLabels) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// namespaceLabels reads a namespace's labels from the cache.
func namespaceLabels(ctx context.Context, reader client.Reader, ns string) (labels.Set, error) {
	n := &corev1.Namespace{}
	if err := reader.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return labels.Set(n.Labels), nil
}

// desiredNetworkPolicy is the spec of p's managed NetworkPolicy in ns.
func (r *policyReconciler) desiredNetworkPolicy(ctx context.Context, p *rules.Policy, podSelector metav1.LabelSelector, ns string, nsLabels labels.Set) (networkingv1.NetworkPolicySpec, error) {
	applying, err := applyingPolicies(ctx, r.reader, r.index, ns, nsLabels)
	if err != nil {
		return networkingv1.NetworkPolicySpec{}, err
	}
	return netpol.Desired(podSelector, netpol.Closed(p, applying)), nil
}

// compileObject compiles a policy of either kind from a watch event.
func compileObject(o client.Object) *rules.Policy {
	var p *rules.Policy
	switch obj := o.(type) {
	case *v1alpha1.LoopbackService:
		p, _ = rules.Compile(obj)
	case *v1alpha1.ClusterLoopbackService:
		p, _ = rules.CompileCluster(obj)
	}
	return p
}

// overlapMapper maps changes to the policies of kind whose managed
// NetworkPolicies they change.
type overlapMapper struct {
	reader   client.Reader
	index    *policyindex.Index
	kind     string
	fallback handler.MapFunc
}

// overlapping returns the policies of m.kind applying in ns whose pods may
// be q's (in a namespace where both apply), q itself excepted.
func (m *overlapMapper) overlapping(ctx context.Context, q *rules.Policy, ns string) []reconcile.Request {
	nsLabels, err := namespaceLabels(ctx, m.reader, ns)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to read namespace", "namespace", ns)
		return nil
	}
	if !q.AppliesToNamespace(ns, nsLabels) {
		return nil
	}
	applying, err := applyingPolicies(ctx, m.reader, m.index, ns, nsLabels)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to map a policy change to the policies it may overlap", "namespace", ns)
		return nil
	}
	var out []reconcile.Request
	for _, p := range applying {
		if p.Ref.Kind == m.kind && p.Ref != q.Ref && rules.MayOverlap(p.Selector, q.Selector) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Ref.Namespace, Name: p.Ref.Name}})
		}
	}
	return out
}

// policyChanged maps a LoopbackService or ClusterLoopbackService (its old
// and its new version, on update) to the policies of m.kind it may overlap
// in the namespaces where it applies.
func (m *overlapMapper) policyChanged(ctx context.Context, o client.Object) []reconcile.Request {
	q := compileObject(o)
	if q == nil {
		return nil
	}
	if q.NamespaceSelector == nil {
		return m.overlapping(ctx, q, q.Ref.Namespace)
	}
	var list corev1.NamespaceList
	// Read only: no deep copy of every namespace on each event.
	if err := m.reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to list namespaces")
		return nil
	}
	seen := map[reconcile.Request]bool{}
	var out []reconcile.Request
	for _, ns := range list.Items {
		if !q.NamespaceSelector.Matches(labels.Set(ns.Labels)) {
			continue
		}
		for _, req := range m.overlapping(ctx, q, ns.Name) {
			if !seen[req] {
				seen[req] = true
				out = append(out, req)
			}
		}
	}
	return out
}

// namespaceChanged maps a namespace whose labels changed (a cluster policy
// may start or stop applying there) to its LoopbackServices.
func (m *overlapMapper) namespaceChanged(ctx context.Context, o client.Object) []reconcile.Request {
	return loopbackServicesIn(ctx, m.reader, o.GetName())
}

// networkPolicyChanged maps a NetworkPolicy change. A managed one (see
// managedOwner) whose owner repairs it reaches that owner through Owns();
// its change can only matter to the policies overlapping the owner, whose
// conflict detection evaluates it. Any other NetworkPolicy, whatever its
// labels or a forged ownerReference, goes to every candidate policy, as
// other kinds do; so does one whose owner will not repair it (terminating,
// its finalizer held by a tenant, or not compiling), which a tenant can
// edit to select any pod and open any port.
func (m *overlapMapper) networkPolicyChanged(ctx context.Context, o client.Object) []reconcile.Request {
	var q *rules.Policy
	if owner := managedOwner(ctx, m.reader, o); owner != nil && owner.GetDeletionTimestamp().IsZero() {
		q = compileObject(owner)
	}
	if q == nil {
		return m.fallback(ctx, o)
	}
	return m.overlapping(ctx, q, o.GetNamespace())
}

// managedOwner returns the policy whose managed NetworkPolicy o is: its
// controller ownerReference names a LoopbackService or
// ClusterLoopbackService of loopguard.io that exists with that UID, and o
// has the name that policy's managed NetworkPolicy has. Nil for any other
// object; labels prove nothing.
func managedOwner(ctx context.Context, reader client.Reader, o client.Object) client.Object {
	ref := policyController(o)
	if ref == nil {
		return nil
	}
	var owner client.Object
	switch ref.Kind {
	case rules.KindLoopbackService:
		if o.GetName() != managedNetworkPolicyName(false, ref.Name) {
			return nil
		}
		owner = &v1alpha1.LoopbackService{}
		if err := reader.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.Name}, owner); err != nil {
			return nil
		}
	case rules.KindClusterLoopbackService:
		if o.GetName() != managedNetworkPolicyName(true, ref.Name) {
			return nil
		}
		owner = &v1alpha1.ClusterLoopbackService{}
		if err := reader.Get(ctx, client.ObjectKey{Name: ref.Name}, owner); err != nil {
			return nil
		}
	default:
		return nil
	}
	if owner.GetUID() != ref.UID {
		return nil
	}
	return owner
}

// policyController is o's controller reference when it names an object of
// loopguard.io's group (what it claims; the callers check the rest).
func policyController(o client.Object) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(o)
	if ref == nil {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != v1alpha1.GroupVersion.Group {
		return nil
	}
	return ref
}

// watchOverlaps adds to b the watches that keep the managed NetworkPolicies
// of kind current. Policy events count only when the spec (generation)
// changes or the policy comes or goes, so status writes of N policies cost
// no N² reconciles.
func watchOverlaps(b *builder.Builder, m *overlapMapper, lbsNamespaces bool, batch time.Duration) *builder.Builder {
	spec := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	h := batched(handler.EnqueueRequestsFromMapFunc(m.policyChanged), batch)
	b = b.Watches(&v1alpha1.LoopbackService{}, h, spec).
		Watches(&v1alpha1.ClusterLoopbackService{}, h, spec)
	if lbsNamespaces {
		b = b.Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(m.namespaceChanged), builder.WithPredicates(relevantChange()))
	}
	return b
}

// watchClusterOverlaps adds to b the watches that keep the cluster
// policies' managed NetworkPolicies current (clusterOverlapWatches).
func watchClusterOverlaps(b *builder.Builder, m *overlapMapper, dirty *dirtyNamespaces, batch time.Duration, paced func(handler.EventHandler) handler.EventHandler) *builder.Builder {
	spec := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	for _, w := range clusterOverlapWatches(m, dirty, batch, paced) {
		b = b.Watches(w.obj, w.handler, spec)
	}
	return b
}

// overlapWatch is one watch: a kind and its handler.
type overlapWatch struct {
	obj     client.Object
	handler handler.EventHandler
}

// clusterOverlapWatches are the policy watches of the cluster policies'
// controller. A LoopbackService's change brings the closure of each
// overlapping cluster policy in its namespace after the batch period, never
// its pace (closure.go), and its audit at its pace (paced); another
// cluster policy's change, which may concern every namespace, its full
// reconcile, batched only. The audit reads the LoopbackService's namespace
// again; the other cluster policy's change, every namespace (dirty.go).
func clusterOverlapWatches(m *overlapMapper, dirty *dirtyNamespaces, batch time.Duration, paced func(handler.EventHandler) handler.EventHandler) []overlapWatch {
	return []overlapWatch{
		{&v1alpha1.LoopbackService{}, batched(handler.EnqueueRequestsFromMapFunc(m.closures), batch)},
		{&v1alpha1.LoopbackService{}, paced(handler.EnqueueRequestsFromMapFunc(dirty.marking(m.policyChanged, namespaceOfObject)))},
		{&v1alpha1.ClusterLoopbackService{}, batched(handler.EnqueueRequestsFromMapFunc(dirty.marking(m.policyChanged, everyNamespace)), batch)},
	}
}
