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
	low        int // requests added with a priority below 0
}

func (q *recordingQueue) Add(r reconcile.Request) { q.now = append(q.now, r.Name) }
func (q *recordingQueue) AddWithOpts(o priorityqueue.AddOpts, rs ...reconcile.Request) {
	for _, r := range rs {
		if o.Priority != nil && *o.Priority < 0 {
			q.low++
		}
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

// plainQueue is a queue that is not a priority queue.
type plainQueue struct{ q *recordingQueue }

func (p plainQueue) Add(r reconcile.Request)                       { p.q.Add(r) }
func (p plainQueue) AddAfter(r reconcile.Request, d time.Duration) { p.q.AddAfter(r, d) }
func (p plainQueue) AddRateLimited(reconcile.Request)              {}
func (p plainQueue) Forget(reconcile.Request)                      {}
func (p plainQueue) NumRequeues(reconcile.Request) int             { return 0 }
func (p plainQueue) Len() int                                      { return 0 }
func (p plainQueue) Get() (reconcile.Request, bool)                { return reconcile.Request{}, true }
func (p plainQueue) Done(reconcile.Request)                        {}
func (p plainQueue) ShutDown()                                     {}
func (p plainQueue) ShutDownWithDrain()                            {}
func (p plainQueue) ShuttingDown() bool                            { return false }

// TestBatchedDelaysEveryEvent: a batched handler enqueues each request of
// every kind of event period later (the queue folds a burst into its
// earliest time), on a priority queue keeping the initial list's low
// priority, and on a plain queue too; period 0 leaves the handler as it
// was.
func TestBatchedDelaysEveryEvent(t *testing.T) {
	ctx := context.Background()
	toPolicies := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "prod"}}, {NamespacedName: types.NamespacedName{Name: "all"}}}
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "1"}}
	fire := func(h handler.EventHandler, plain bool) *recordingQueue {
		q := &recordingQueue{}
		var wq workqueue.TypedRateLimitingInterface[reconcile.Request] = q
		if plain {
			wq = plainQueue{q}
		}
		h.Create(ctx, event.CreateEvent{Object: pod, IsInInitialList: true}, wq)
		h.Update(ctx, event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, wq)
		h.Delete(ctx, event.DeleteEvent{Object: pod}, wq)
		h.Generic(ctx, event.GenericEvent{Object: pod}, wq)
		return q
	}
	for _, plain := range []bool{false, true} {
		q := fire(batched(toPolicies, 2*time.Second), plain)
		if len(q.now) != 0 || len(q.after) != 8 {
			t.Fatalf("batched (plain queue %v): %d immediate %v, %d delayed %v; want 0 and 8", plain, len(q.now), q.now, len(q.after), q.after)
		}
		for _, a := range q.after {
			if a != "prod@2s" && a != "all@2s" {
				t.Errorf("delayed %s, want prod or all after 2s", a)
			}
		}
		if want := map[bool]int{false: 4, true: 0}[plain]; q.low != want {
			t.Errorf("plain queue %v: %d requests at low priority, want %d (the initial list's, and its update with an unchanged resourceVersion)", plain, q.low, want)
		}
	}
	if q := fire(batched(toPolicies, 0), false); len(q.after) != 0 || len(q.now) != 8 || q.low != 4 {
		t.Errorf("period 0: immediate %v, delayed %v, %d low; want the handler's own (8 immediate, 4 of them low)", q.now, q.after, q.low)
	}
}
