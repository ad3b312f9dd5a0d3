package controllers

import (
	"context"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/internal/addrindex"
)

// A cluster policy's reconcile reads every namespace it selects, and a
// write in any one of them is an event for it. Even with each namespace's
// audit memoized (audit_memo.go), gathering the inputs of every selected
// namespace to see whether they changed was 57% of the manager's CPU
// while 10,000 LoopbackServices converged at 150,000 pods, for events
// that each concerned one namespace. So the events say which namespaces
// they concern: the handler marks them for each policy it maps the event
// to, before the request is queued, and the reconcile takes the marks
// when it starts. It gathers, keeps the NetworkPolicy of, and audits only
// the marked namespaces, those without an audit of the policy's current
// generation, and all of them after the audit interval; the others' last
// audits stand. An event that comes while a reconcile runs marks again
// and queues the request again, so no mark is lost; a reconcile that
// fails puts back what it took.

// dirtyNamespaces are, per cluster policy, the namespaces marked since
// its reconcile last took them.
type dirtyNamespaces struct {
	mu sync.Mutex
	m  map[string]*dirtySet
}

type dirtySet struct {
	all bool
	ns  map[string]bool
	// full is when a reconcile last took every namespace.
	full time.Time
}

func newDirtyNamespaces() *dirtyNamespaces {
	return &dirtyNamespaces{m: map[string]*dirtySet{}}
}

func (d *dirtyNamespaces) entry(policy string) *dirtySet {
	e := d.m[policy]
	if e == nil {
		e = &dirtySet{ns: map[string]bool{}}
		d.m[policy] = e
	}
	return e
}

// mark marks namespaces for policy; nil marks every namespace.
func (d *dirtyNamespaces) mark(policy string, namespaces []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entry(policy)
	if namespaces == nil {
		e.all = true
		return
	}
	for _, ns := range namespaces {
		e.ns[ns] = true
	}
}

// take returns and clears policy's marks. Every namespace is marked when
// the policy has never had every namespace taken (its first reconcile
// since the manager started) or not for interval.
func (d *dirtyNamespaces) take(policy string, now time.Time, interval time.Duration) (all bool, namespaces map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entry(policy)
	all, namespaces = e.all, e.ns
	if e.full.IsZero() || now.Sub(e.full) >= interval {
		all = true
	}
	if all {
		e.full = now
	}
	e.all, e.ns = false, map[string]bool{}
	return all, namespaces
}

// putBack returns what a reconcile took and could not finish.
func (d *dirtyNamespaces) putBack(policy string, all bool, namespaces map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entry(policy)
	if all {
		e.all, e.full = true, time.Time{}
	}
	for ns := range namespaces {
		e.ns[ns] = true
	}
}

// forget drops a deleted policy's marks.
func (d *dirtyNamespaces) forget(policy string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, policy)
}

// namespacesOf says which namespaces' audits an object's change concerns;
// nil: every namespace.
type namespacesOf func(context.Context, client.Object) []string

// namespaceOfObject: the object's own namespace (a pod, a workload, a Service,
// a NetworkPolicy, a LoopbackService), or the namespace itself.
func namespaceOfObject(_ context.Context, o client.Object) []string {
	if o.GetNamespace() == "" {
		return []string{o.GetName()}
	}
	return []string{o.GetNamespace()}
}

// everyNamespace: another cluster policy's change concerns every namespace
// both select.
func everyNamespace(context.Context, client.Object) []string { return nil }

// sliceNamespaces: a hand-written EndpointSlice concerns the audits of the
// namespaces of the pods it names, in any namespace (gatherAudit reads it
// there), and its own. Every namespace when those pods cannot be read.
func sliceNamespaces(c client.Reader) namespacesOf {
	return func(ctx context.Context, o client.Object) []string {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			return namespaceOfObject(ctx, o)
		}
		pods, err := addrindex.PodsNamed(ctx, c, s)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "failed to read the pods an EndpointSlice names; auditing every namespace again", "endpointslice", client.ObjectKeyFromObject(s))
			return nil
		}
		out := []string{s.Namespace}
		for _, p := range pods {
			out = append(out, p.Namespace)
		}
		return out
	}
}

// serviceNamespaces: a Service concerns its own namespace's audits and
// those of the namespaces of the pods its EndpointSlices name
// (podsBehindService). Every namespace when those cannot be read.
func serviceNamespaces(c client.Reader) namespacesOf {
	return func(ctx context.Context, o client.Object) []string {
		pods, err := podsBehindService(ctx, c, o)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "failed to read the pods a Service's EndpointSlices name; auditing every namespace again", "service", client.ObjectKeyFromObject(o))
			return nil
		}
		out := []string{o.GetNamespace()}
		for _, p := range pods {
			out = append(out, p.Namespace)
		}
		return out
	}
}

// marking wraps a map function so that each request it returns has the
// namespaces the object concerns marked, before the handler queues it.
// controller-runtime maps both sides of an update, so a namespace left
// is marked as well as the one entered.
func (d *dirtyNamespaces) marking(f handler.MapFunc, of namespacesOf) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs := f(ctx, o)
		if len(reqs) == 0 {
			return reqs
		}
		namespaces := of(ctx, o)
		for _, r := range reqs {
			if !isClosure(r) {
				d.mark(r.Name, namespaces)
			}
		}
		return reqs
	}
}
