package controllers

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// batched makes h enqueue its requests period after the event instead of
// at once. The queue keeps one entry per request with its earliest time,
// so the events of a burst fold into one reconcile period after the first
// of them (later with a pacer): what the EndpointSlice controller does
// with --endpointslice-updates-batch-period. It serves the reconcilers
// whose one request reads many objects and whose events come from all of
// them: a ClusterLoopbackService (any write in any namespace it selects;
// 43% of the manager's CPU in the fourth 150,000-pod run, reconciled back
// to back), the webhook registration (every policy) and a namespace's
// Report. Admission never waits for a reconcile. period 0 returns h.
func batched(h handler.EventHandler, period time.Duration) handler.EventHandler {
	return batchedPaced(h, period, nil)
}

// batchedPaced is batched whose requests also wait for pace (see pacer).
func batchedPaced(h handler.EventHandler, period time.Duration, pace *pacer) handler.EventHandler {
	if period <= 0 {
		return h
	}
	return &batchHandler{h: h, period: period, pace: pace}
}

type batchHandler struct {
	h      handler.EventHandler
	period time.Duration
	pace   *pacer
}

func (b *batchHandler) Create(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.h.Create(ctx, e, b.delaying(q))
}

func (b *batchHandler) Update(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.h.Update(ctx, e, b.delaying(q))
}

func (b *batchHandler) Delete(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.h.Delete(ctx, e, b.delaying(q))
}

func (b *batchHandler) Generic(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.h.Generic(ctx, e, b.delaying(q))
}

func (b *batchHandler) delaying(q workqueue.TypedRateLimitingInterface[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		return delayingPriorityQueue{PriorityQueue: pq, period: b.period, pace: b.pace}
	}
	return delayingQueue{TypedRateLimitingInterface: q, period: b.period, pace: b.pace}
}

// delayingQueue turns Add into AddAfter(period, or the pacer's delay if
// longer).
type delayingQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	period time.Duration
	pace   *pacer
}

func (q delayingQueue) Add(r reconcile.Request) { q.AddAfter(r, max(q.period, q.pace.delay(r))) }

// delayingPriorityQueue is delayingQueue for controller-runtime's priority
// queue (the default): handlers keep their priorities (the initial list's
// events are low), with at least period's delay.
type delayingPriorityQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	period time.Duration
	pace   *pacer
}

func (q delayingPriorityQueue) Add(r reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{}, r)
}

func (q delayingPriorityQueue) AddWithOpts(o priorityqueue.AddOpts, rs ...reconcile.Request) {
	after := max(o.After, q.period)
	for _, r := range rs {
		o.After = max(after, q.pace.delay(r)) // a nil pacer's delay is 0
		q.PriorityQueue.AddWithOpts(o, r)
	}
}
