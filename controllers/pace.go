package controllers

import (
	"context"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Pacing of a cluster policy's audit: a ClusterLoopbackService's reconcile
// reads every namespace it selects, and every write in any of them is an
// event for it. At 150,000 pods, while 10,000 LoopbackServices converged,
// its reconciles took 5 s each and the 20 cluster policies ran back to
// back: 63% of the manager's CPU, starving the LoopbackServices. A fixed
// batch period cannot fit both a 10 ms and a 5 s reconcile. Only the
// events that feed its audit are paced; those that change what its
// NetworkPolicies must close (another policy's spec, its own spec, drift,
// namespaces) are not.
const (
	// paceFactor: after a reconcile that took d, audit events wait until
	// paceFactor×d after it ended, so while they keep coming a cluster
	// policy's audit holds at most 1/(1+paceFactor) of a worker.
	paceFactor = 3
	// paceLimit caps that wait (the batch period's own upper bound).
	paceLimit = 10 * time.Second
)

// pacer records, per request, when its reconcile started and ended and
// how long the last finished one took.
type pacer struct {
	factor float64
	limit  time.Duration
	now    func() time.Time

	mu   sync.Mutex
	last map[reconcile.Request]paced
}

type paced struct {
	start, end time.Time
	took       time.Duration // the last finished reconcile's
	running    bool
}

func newPacer(factor float64, limit time.Duration) *pacer {
	return &pacer{factor: factor, limit: limit, now: time.Now, last: map[reconcile.Request]paced{}}
}

// delay is how long from now an audit event for req must wait: until
// factor times its last reconcile's duration after that reconcile ended.
// While a reconcile runs, it is expected to take as long as the last one,
// so the wait counts from its expected end. At most limit; 0 for a request
// never reconciled and for a nil pacer.
func (p *pacer) delay(req reconcile.Request) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	l, ok := p.last[req]
	p.mu.Unlock()
	if !ok || l.took == 0 {
		return 0
	}
	gap := min(time.Duration(p.factor*float64(l.took)), p.limit)
	end := l.end
	if l.running {
		end = l.start.Add(l.took)
	}
	return min(max(end.Add(gap).Sub(p.now()), 0), p.limit)
}

// Reconciler wraps r, recording each reconcile's start and duration. gone
// says the request's object is deleted: its entry goes, so there is one
// entry per existing cluster policy.
func (p *pacer) Reconciler(r reconcile.Reconciler, gone func(context.Context, reconcile.Request) bool) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		start := p.now()
		p.mu.Lock()
		l := p.last[req]
		l.start, l.running = start, true
		p.last[req] = l
		p.mu.Unlock()

		res, err := r.Reconcile(ctx, req)

		end, deleted := p.now(), gone != nil && gone(ctx, req)
		p.mu.Lock()
		if deleted {
			delete(p.last, req)
		} else {
			p.last[req] = paced{start: start, end: end, took: end.Sub(start)}
		}
		p.mu.Unlock()
		return res, err
	})
}
