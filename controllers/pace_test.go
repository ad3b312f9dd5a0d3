package controllers

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestPacerSpacesCostlyReconciles: after a reconcile that took d, a
// request's batched events wait until 3d after it ended (at most the
// limit); a cheap or new request waits only the batch period; a deleted
// policy's entry goes.
func TestPacerSpacesCostlyReconciles(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPacer(paceFactor, paceLimit)
	p.now = func() time.Time { return now }
	prod, all := reconcile.Request{NamespacedName: types.NamespacedName{Name: "prod"}}, reconcile.Request{NamespacedName: types.NamespacedName{Name: "all"}}
	took := map[string]time.Duration{"prod": 2 * time.Second, "all": 10 * time.Millisecond, "huge": time.Minute}
	deleted := map[string]bool{}
	r := p.Reconciler(reconcile.Func(func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
		now = now.Add(took[req.Name])
		return reconcile.Result{}, nil
	}), func(req reconcile.Request) bool { return deleted[req.Name] })

	if d := p.delay(prod); d != 0 {
		t.Fatalf("never reconciled: delay %s, want 0", d)
	}
	for _, req := range []reconcile.Request{prod, all, {NamespacedName: types.NamespacedName{Name: "huge"}}} {
		_, _ = r.Reconcile(context.Background(), req)
	}
	// now is the end of "huge"'s reconcile; prod ended a minute before.
	if d := p.delay(reconcile.Request{NamespacedName: types.NamespacedName{Name: "huge"}}); d != paceLimit {
		t.Errorf("a 1 min reconcile: delay %s, want the limit %s", d, paceLimit)
	}
	if d := p.delay(prod); d != 0 {
		t.Errorf("prod's 6 s gap passed a minute ago: delay %s, want 0", d)
	}
	_, _ = r.Reconcile(context.Background(), prod)
	if d := p.delay(prod); d != 6*time.Second {
		t.Errorf("right after a 2 s reconcile: delay %s, want 6s", d)
	}
	now = now.Add(4 * time.Second)
	if d := p.delay(prod); d != 2*time.Second {
		t.Errorf("4 s later: delay %s, want 2s", d)
	}

	// Through the batched handler: prod waits its pace, all the period.
	toPolicies := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{prod, all}
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "1"}}
	for _, plain := range []bool{false, true} {
		q := &recordingQueue{}
		var h = batchedPaced(toPolicies, time.Second, p)
		if plain {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, plainQueue{q})
		} else {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, q)
		}
		if len(q.now) != 0 || len(q.after) != 2 || q.after[0] != "prod@2s" || q.after[1] != "all@1s" {
			t.Errorf("plain queue %v: immediate %v, delayed %v; want prod@2s and all@1s", plain, q.now, q.after)
		}
	}

	deleted["prod"] = true
	_, _ = r.Reconcile(context.Background(), prod)
	if _, ok := p.last[prod]; ok {
		t.Error("a deleted policy's pace is kept")
	}
}
