package controllers

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// recordingQueue records how requests are enqueued; it claims to be a
// priority queue, as controller-runtime's default queue is.
type recordingQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	now, after []string
}

func (q *recordingQueue) Add(r reconcile.Request) { q.now = append(q.now, r.Name) }
func (q *recordingQueue) AddWithOpts(o priorityqueue.AddOpts, rs ...reconcile.Request) {
	for _, r := range rs {
		if o.After > 0 {
			q.AddAfter(r, o.After)
		} else {
			q.Add(r)
		}
	}
}
func (q *recordingQueue) AddAfter(r reconcile.Request, d time.Duration) {
	q.after = append(q.after, r.Name+"@"+d.String())
}
func (q *recordingQueue) GetWithPriority() (reconcile.Request, int, bool) {
	return reconcile.Request{}, 0, false
}

var _ priorityqueue.PriorityQueue[reconcile.Request] = &recordingQueue{}

// TestBatchedDelaysEveryEvent: a batched handler enqueues each request of
// every kind of event period later (the queue folds a burst into its
// earliest time), also for a priority queue's initial-list events; period
// 0 leaves the handler as it was.
func TestBatchedDelaysEveryEvent(t *testing.T) {
	ctx := context.Background()
	toPolicies := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "prod"}}, {NamespacedName: types.NamespacedName{Name: "all"}}}
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "1"}}
	fire := func(h handler.EventHandler) *recordingQueue {
		q := &recordingQueue{}
		h.Create(ctx, event.CreateEvent{Object: pod, IsInInitialList: true}, q)
		h.Update(ctx, event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, q)
		h.Delete(ctx, event.DeleteEvent{Object: pod}, q)
		h.Generic(ctx, event.GenericEvent{Object: pod}, q)
		return q
	}
	q := fire(batched(toPolicies, 2*time.Second))
	if len(q.now) != 0 || len(q.after) != 8 {
		t.Fatalf("batched: %d immediate %v, %d delayed %v; want 0 and 8", len(q.now), q.now, len(q.after), q.after)
	}
	for _, a := range q.after {
		if a != "prod@2s" && a != "all@2s" {
			t.Errorf("delayed %s, want prod or all after 2s", a)
		}
	}
	if q := fire(batched(toPolicies, 0)); len(q.after) != 0 || len(q.now) != 8 {
		t.Errorf("period 0: immediate %v, delayed %v; want all 8 immediate (the handler's own)", q.now, q.after)
	}
}
