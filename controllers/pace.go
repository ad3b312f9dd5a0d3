package controllers

import (
	"context"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Pacing of the cluster policies: a ClusterLoopbackService's reconcile
// reads every namespace it selects, and every write in any of them is an
// event for it. At 150,000 pods, while 10,000 LoopbackServices converged,
// its reconciles took 5 s each and the 20 cluster policies were reconciled
// back to back: 63% of the manager's CPU, starving the LoopbackServices.
// A fixed batch period cannot fit both a 10 ms and a 5 s reconcile.
const (
	// paceFactor: after a reconcile that took d, batched events wait until
	// paceFactor×d after it ended, so while events keep coming a cluster
	// policy holds at most 1/(1+paceFactor) of a worker.
	paceFactor = 3
	// paceLimit caps that wait (the batch period's own upper bound).
	paceLimit = 10 * time.Second
)

// pacer records how long each request's reconcile took and when it ended.
type pacer struct {
	factor float64
	limit  time.Duration
	now    func() time.Time

	mu   sync.Mutex
	last map[reconcile.Request]paced
}

type paced struct {
	end  time.Time
	took time.Duration
}

func newPacer(factor float64, limit time.Duration) *pacer {
	return &pacer{factor: factor, limit: limit, now: time.Now, last: map[reconcile.Request]paced{}}
}

// delay is how long from now a batched event for req must wait: until
// factor times its last reconcile's duration after that reconcile ended,
// at most limit; 0 for a request not reconciled yet. A nil pacer never
// delays.
func (p *pacer) delay(req reconcile.Request) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	l, ok := p.last[req]
	p.mu.Unlock()
	if !ok {
		return 0
	}
	gap := min(time.Duration(p.factor*float64(l.took)), p.limit)
	return min(max(l.end.Add(gap).Sub(p.now()), 0), p.limit)
}

// Reconciler wraps r, recording each reconcile's duration. Entries are one
// per cluster policy and go when its reconcile finds it gone.
func (p *pacer) Reconciler(r reconcile.Reconciler, gone func(reconcile.Request) bool) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		start := p.now()
		res, err := r.Reconcile(ctx, req)
		end := p.now()
		p.mu.Lock()
		if gone != nil && gone(req) {
			delete(p.last, req)
		} else {
			p.last[req] = paced{end: end, took: end.Sub(start)}
		}
		p.mu.Unlock()
		return res, err
	})
}
