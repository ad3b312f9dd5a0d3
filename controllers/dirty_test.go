package controllers

import (
	"context"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestDirtyNamespacesAreTakenOnce: a policy's first reconcile, and the
// first after the audit interval, read every namespace; the others read
// what was marked since the last one took its marks; what a reconcile
// could not finish is put back; a deleted policy's marks go.
func TestDirtyNamespacesAreTakenOnce(t *testing.T) {
	d := newDirtyNamespaces()
	t0 := time.Now()
	take := func(at time.Duration, wantAll bool, want ...string) {
		t.Helper()
		all, got := d.take("mesh", t0.Add(at), time.Hour)
		wantSet := map[string]bool{}
		for _, ns := range want {
			wantSet[ns] = true
		}
		if all != wantAll || !maps.Equal(got, wantSet) {
			t.Errorf("take at %s = every namespace %v, %v; want %v, %v", at, all, got, wantAll, wantSet)
		}
	}
	d.mark("mesh", []string{"a"})
	take(0, true, "a") // the first: every namespace
	take(time.Second, false)
	d.mark("mesh", []string{"a", "b"})
	d.mark("other", []string{"c"})
	take(2*time.Second, false, "a", "b")
	take(3*time.Second, false)
	d.mark("mesh", nil)
	take(4*time.Second, true)
	take(time.Hour, false) // an hour after the last full one, at 4 s
	take(time.Hour+4*time.Second, true)

	d.putBack("mesh", false, map[string]bool{"b": true})
	take(time.Hour+5*time.Second, false, "b")
	d.putBack("mesh", true, nil)
	take(time.Hour+6*time.Second, true)

	d.mark("mesh", []string{"a"})
	d.forget("mesh")
	take(time.Hour+7*time.Second, true) // as new
}

// TestMarkingMarksThePoliciesMapped: the wrapped map function marks, for
// each full request it returns, the namespaces the object concerns, and
// nothing for a closure request or an object mapped to no policy.
func TestMarkingMarksThePoliciesMapped(t *testing.T) {
	d := newDirtyNamespaces()
	now := time.Now()
	for _, p := range []string{"mesh", "other", "idle"} {
		d.take(p, now, time.Hour)
	}
	reqs := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "mesh"}}, closureRequest("other", "shop")}
	f := d.marking(func(_ context.Context, o client.Object) []reconcile.Request {
		if o.GetName() == "unmapped" {
			return nil
		}
		return reqs
	}, namespaceOfObject)
	ctx := context.Background()
	if got := f(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"}}); len(got) != 2 {
		t.Fatalf("marking changed the requests: %v", got)
	}
	f(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "bank", Name: "unmapped"}})
	f(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "audit"}})
	for p, want := range map[string]map[string]bool{"mesh": {"shop": true, "audit": true}, "other": {}, "idle": {}} {
		if all, got := d.take(p, now, time.Hour); all || !maps.Equal(got, want) {
			t.Errorf("%s: marked every namespace %v, %v; want %v", p, all, got, want)
		}
	}
}
