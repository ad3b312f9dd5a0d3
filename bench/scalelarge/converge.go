package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// convergence follows the bench's policies and the managed
// NetworkPolicies by watches started before the first policy's creation,
// and records when every NetworkPolicy existed and every status was
// current, at the event that made it so. Listing 10,000 policies and
// 13,000 NetworkPolicies every few seconds, as the tool did until the
// eleventh run, loaded the API server the manager was being measured on.
type convergence struct {
	expect  map[string]int // policy key → the pods it selects
	wantNPs int

	mu      sync.Mutex
	current map[string]bool
	nps     map[string]bool
	npsAt   time.Time // when every managed NetworkPolicy first existed
	doneAt  time.Time // when, after that, every status was current
	changed chan struct{}
}

// watchConvergence starts the watches; they stop with ctx.
func (b *bench) watchConvergence(ctx context.Context) *convergence {
	c := &convergence{expect: map[string]int{}, wantNPs: b.size.ExpectedNetworkPolicies(),
		current: map[string]bool{}, nps: map[string]bool{}, changed: make(chan struct{}, 1)}
	for j := 0; j < b.size.Policies; j++ {
		p := b.size.Policy(j)
		c.expect[p.NS+"/"+p.Name] = p.Matched
	}
	for i := 0; i < b.size.ClusterPolicies; i++ {
		p := b.size.ClusterPolicy(i)
		c.expect["/"+p.Name] = p.Matched
	}
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(b.dyn, 0)
	for _, gvr := range []schema.GroupVersionResource{lbsGVR, clbsGVR} {
		_, _ = dyn.ForResource(gvr).Informer().AddEventHandler(handlerOf(c.policy))
	}
	typed := informers.NewSharedInformerFactoryWithOptions(b.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managedBy }))
	_, _ = typed.Networking().V1().NetworkPolicies().Informer().AddEventHandler(handlerOf(c.networkPolicy))
	dyn.Start(ctx.Done())
	typed.Start(ctx.Done())
	dyn.WaitForCacheSync(ctx.Done())
	typed.WaitForCacheSync(ctx.Done())
	return c
}

// handlerOf calls f with each object and whether it is gone.
func handlerOf(f func(o any, gone bool)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { f(o, false) },
		UpdateFunc: func(_, o any) { f(o, false) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			f(o, true)
		},
	}
}

// policy records whether a policy's status is current: observedGeneration
// is its generation, matchedPods what the layout says, and the
// registration covers it (Enforced True for the generation).
func (c *convergence) policy(o any, gone bool) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := u.GetNamespace() + "/" + u.GetName()
	n, ok := c.expect[key]
	if !ok {
		return
	}
	og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	mp, _, _ := unstructured.NestedInt64(u.Object, "status", "matchedPods")
	c.set(c.current, key, !gone && og == u.GetGeneration() && mp == int64(n) && enforced(u))
}

// networkPolicy records a managed NetworkPolicy of the bench's namespaces.
func (c *convergence) networkPolicy(o any, gone bool) {
	np, ok := o.(*networkingv1.NetworkPolicy)
	if !ok || !strings.HasPrefix(np.Namespace, "scale-") || np.Namespace == admissionNS {
		return
	}
	c.set(c.nps, np.Namespace+"/"+np.Name, !gone)
}

func (c *convergence) set(m map[string]bool, key string, in bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in {
		m[key] = true
	} else {
		delete(m, key)
	}
	now := time.Now()
	if c.npsAt.IsZero() && len(c.nps) >= c.wantNPs {
		c.npsAt = now
	}
	if !c.npsAt.IsZero() && c.doneAt.IsZero() && len(c.current) == len(c.expect) {
		c.doneAt = now
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// converge waits until every managed NetworkPolicy exists and every
// status is current; it prints when each happened, counted from since,
// and the progress every 15 s.
func (b *bench) converge(ctx context.Context, c *convergence, since time.Time, timeout time.Duration) {
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		npsAt, doneAt, nps, current := c.npsAt, c.doneAt, len(c.nps), len(c.current)
		c.mu.Unlock()
		if !doneAt.IsZero() {
			b.logf("every managed NetworkPolicy exists (%d) %s after the last policy's creation (target < 60s)", nps, npsAt.Sub(since).Round(time.Millisecond))
			b.logf("every status current (observedGeneration, matchedPods, Enforced) %s after the last policy's creation (target < 60s)", doneAt.Sub(since).Round(time.Millisecond))
			b.logCPU("to convergence")
			return
		}
		select {
		case <-c.changed:
		case <-progress.C:
			b.logf("… %d/%d NetworkPolicies, %d/%d statuses current", nps, c.wantNPs, current, len(c.expect))
		case <-deadline:
			b.logCPU("to the timeout")
			fail(fmt.Errorf("not converged after %s", timeout))
		case <-ctx.Done():
			return
		}
	}
}
