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
// request's audit events wait until 3d after it ended (at most the
// limit), counted from the expected end while a reconcile runs; a cheap
// or new request waits only the batch period; a deleted policy's entry
// goes.
func TestPacerSpacesCostlyReconciles(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPacer(paceFactor, paceLimit)
	p.now = func() time.Time { return now }
	req := func(name string) reconcile.Request {
		return reconcile.Request{NamespacedName: types.NamespacedName{Name: name}}
	}
	prod, all, huge := req("prod"), req("all"), req("huge")
	took := map[string]time.Duration{"prod": 2 * time.Second, "all": 10 * time.Millisecond, "huge": time.Minute}
	deleted := map[string]bool{}
	var midway time.Duration // prod's delay half a second into its reconcile
	r := p.Reconciler(reconcile.Func(func(_ context.Context, rq reconcile.Request) (reconcile.Result, error) {
		if rq == prod {
			now = now.Add(500 * time.Millisecond)
			midway = p.delay(prod)
			now = now.Add(-500 * time.Millisecond)
		}
		now = now.Add(took[rq.Name])
		return reconcile.Result{}, nil
	}), func(_ context.Context, rq reconcile.Request) bool { return deleted[rq.Name] })
	ctx := context.Background()

	if d := p.delay(prod); d != 0 {
		t.Fatalf("never reconciled: delay %s, want 0", d)
	}
	_, _ = r.Reconcile(ctx, prod)
	if midway != 0 {
		t.Errorf("during the first reconcile: delay %s, want 0 (no duration known yet)", midway)
	}
	_, _ = r.Reconcile(ctx, huge)
	if d := p.delay(huge); d != paceLimit {
		t.Errorf("a 1 min reconcile: delay %s, want the limit %s", d, paceLimit)
	}
	if d := p.delay(prod); d != 0 {
		t.Errorf("prod's 6 s gap passed a minute ago: delay %s, want 0", d)
	}
	_, _ = r.Reconcile(ctx, prod)
	if midway != 7500*time.Millisecond {
		t.Errorf("0.5 s into a reconcile whose last took 2 s: delay %s, want 7.5s (its expected end, then 6 s)", midway)
	}
	if d := p.delay(prod); d != 6*time.Second {
		t.Errorf("right after a 2 s reconcile: delay %s, want 6s", d)
	}
	now = now.Add(4 * time.Second)
	if d := p.delay(prod); d != 2*time.Second {
		t.Errorf("4 s later: delay %s, want 2s", d)
	}

	// Through the batched handler: prod waits its pace, all (just
	// reconciled in 10 ms: a 30 ms gap) the period.
	_, _ = r.Reconcile(ctx, all)
	now = now.Add(-took["all"])
	toPolicies := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{prod, all}
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "1"}}
	for _, plain := range []bool{false, true} {
		q := &recordingQueue{}
		h := batchedPaced(toPolicies, time.Second, p)
		if plain {
			h.Update(ctx, event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, plainQueue{q})
		} else {
			h.Update(ctx, event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, q)
		}
		if len(q.now) != 0 || len(q.after) != 2 || q.after[0] != "prod@2s" || q.after[1] != "all@1s" {
			t.Errorf("plain queue %v: immediate %v, delayed %v; want prod@2s and all@1s", plain, q.now, q.after)
		}
	}

	deleted["prod"] = true
	_, _ = r.Reconcile(ctx, prod)
	if _, ok := p.last[prod]; ok {
		t.Error("a deleted policy's pace is kept")
	}
}
