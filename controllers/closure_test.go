package controllers

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestClosureKeepsOneNamespace: a closure request writes the cluster
// policy's NetworkPolicy in its namespace only, closing the ports of the
// LoopbackServices there, and neither audits nor writes status; in a
// namespace the policy does not select, or with its NetworkPolicies
// Disabled, it writes nothing.
func TestClosureKeepsOneNamespace(t *testing.T) {
	ctx := context.Background()
	sel := map[string]string{"mesh": "on"}
	nsA := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: sel}}
	nsB := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: sel}}
	nsC := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh", UID: "u-mesh", Generation: 1},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: sel},
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}},
	}
	var objs []client.Object
	for _, ns := range []string{"a", "b", "c"} {
		objs = append(objs, &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "redis", UID: types.UID("u-redis-" + ns), Generation: 1},
			Spec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 6379}}}})
	}
	c := fake.NewClientBuilder().WithScheme(app.Scheme()).WithObjects(append(objs, nsA, nsB, nsC, clbs)...).
		WithStatusSubresource(&v1alpha1.ClusterLoopbackService{}).Build()
	r := &ClusterLoopbackServiceReconciler{policyReconciler: policyReconciler{
		client: c, reader: c, scheme: app.Scheme(), recorder: events.NewFakeRecorder(10),
		memo: newAuditMemo(), nodeMates: newNodeMateMemo(), metrics: newPolicyMetrics(metrics.NewPolicyGauges()),
	}}
	np := func(ns string) (*networkingv1.NetworkPolicy, error) {
		out := &networkingv1.NetworkPolicy{}
		return out, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "loopguard-cluster-mesh"}, out)
	}

	for _, ns := range []string{"a", "c"} {
		if _, err := r.Reconcile(ctx, closureRequest("mesh", ns)); err != nil {
			t.Fatalf("closure of %s: %v", ns, err)
		}
	}
	got, err := np("a")
	if err != nil {
		t.Fatalf("no NetworkPolicy in the namespace of the closure: %v", err)
	}
	if ports := got.Spec.Ingress[0].Ports; len(ports) == 0 || ports[0].EndPort == nil || *ports[0].EndPort != 6378 {
		t.Errorf("the closure does not keep the LoopbackService's 6379 closed: %+v", ports)
	}
	for _, ns := range []string{"b", "c"} {
		if _, err := np(ns); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s: want no NetworkPolicy (not the closure's namespace, or not selected), got %v", ns, err)
		}
	}
	cur := &v1alpha1.ClusterLoopbackService{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(clbs), cur); err != nil {
		t.Fatal(err)
	}
	if len(cur.Status.Conditions) != 0 || cur.Status.ObservedGeneration != 0 {
		t.Errorf("a closure wrote status: %+v", cur.Status)
	}

	// The namespace is relabelled out of the policy while a closure runs
	// (the full reconcile prunes its NetworkPolicy there): the closure read
	// the old labels, so it must run again, and then remove what it wrote.
	staleNS := nsA.DeepCopy()
	curNS := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "a"}, curNS); err != nil {
		t.Fatal(err)
	}
	staleNS.ResourceVersion = curNS.ResourceVersion
	curNS.Labels = nil
	if err := c.Update(ctx, curNS); err != nil {
		t.Fatal(err)
	}
	r.reader = &staleOnce{Client: c, stale: staleNS}
	if res, err := r.Reconcile(ctx, closureRequest("mesh", "a")); err != nil || res.RequeueAfter == 0 {
		t.Fatalf("a closure that read older namespace labels than the cache holds after its write: %+v, %v; want it requeued", res, err)
	}
	r.reader = c
	if res, err := r.Reconcile(ctx, closureRequest("mesh", "a")); err != nil || res.RequeueAfter != 0 {
		t.Fatalf("closure: %+v, %v", res, err)
	}
	got, err = np("a")
	if err == nil && got.DeletionTimestamp.IsZero() {
		t.Fatalf("namespace no longer selected: want the NetworkPolicy in a deleted, it is not")
	}
	if err == nil { // its finalizer released, as the finalizer controller would
		got.Finalizers = nil
		if err := c.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := np("a"); !apierrors.IsNotFound(err) {
		t.Fatalf("the NetworkPolicy in a is still there: %v", err)
	}
	curNS.Labels = sel
	if err := c.Update(ctx, curNS); err != nil {
		t.Fatal(err)
	}

	// The policy changes while a closure runs: the closure read the old
	// one, so it must run again.
	stale := cur.DeepCopy()
	cur.Spec.NetworkPolicy = v1alpha1.NetworkPolicyDisabled
	cur.Generation = 2
	if err := c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	r.reader = &staleOnce{Client: c, stale: stale}
	res, err := r.Reconcile(ctx, closureRequest("mesh", "a"))
	if err != nil || res.RequeueAfter == 0 {
		t.Fatalf("a closure that read an older policy than the cache holds after its write: %+v, %v; want it requeued", res, err)
	}
	if _, err := np("a"); err != nil {
		t.Fatalf("the stale closure should have kept the NetworkPolicy it read as Managed: %v", err)
	}
	// Again, with the current policy: Disabled removes it, as the full
	// reconcile would.
	res, err = r.Reconcile(ctx, closureRequest("mesh", "a"))
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("closure: %+v, %v", res, err)
	}
	// Deleted: its finalizer (FinalizerPodsGone) keeps it until the
	// finalizer controller releases it.
	if got, err := np("a"); err == nil && got.DeletionTimestamp.IsZero() {
		t.Errorf("Disabled: want the NetworkPolicy in a deleted, it is not")
	}
}

// staleOnce is a reader whose first Get of the stale object's kind
// returns stale: the cache before a change the full reconcile had seen.
type staleOnce struct {
	client.Client
	stale client.Object
}

func (s *staleOnce) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	if s.stale != nil && fmt.Sprintf("%T", o) == fmt.Sprintf("%T", s.stale) {
		reflect.ValueOf(o).Elem().Set(reflect.ValueOf(s.stale.DeepCopyObject()).Elem())
		s.stale = nil
		return nil
	}
	return s.Client.Get(ctx, key, o, opts...)
}

// TestClosureNeverWaitsForThePace: a tenant's new LoopbackService brings
// the closure of an overlapping cluster policy in its namespace after the
// batch period, however slow that policy's audit (and so its pace); the
// audit itself waits for its pace; another cluster policy's change brings
// the full reconcile after the batch period.
func TestClosureNeverWaitsForThePace(t *testing.T) {
	ctx := context.Background()
	sel := map[string]string{"mesh": "on"}
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh", UID: "u-mesh", Generation: 1},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: sel},
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}},
	}
	other := clbs.DeepCopy()
	other.Name, other.UID = "other", "u-other"
	tenant := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "port-1", UID: "u-port-1", Generation: 1},
		Spec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 1}}}}
	c := fake.NewClientBuilder().WithScheme(app.Scheme()).
		WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: sel}}, clbs, other, tenant).Build()
	m := &overlapMapper{reader: c, kind: rules.KindClusterLoopbackService}
	pace := newPacer(paceFactor, paceLimit)
	now := time.Now()
	pace.now = func() time.Time { return now }
	pace.last[reconcile.Request{NamespacedName: types.NamespacedName{Name: "mesh"}}] = paced{start: now.Add(-time.Minute), end: now, took: time.Minute}
	const batch = time.Second
	dirty := newDirtyNamespaces()
	for _, p := range []string{"mesh", "other"} {
		dirty.take(p, now, time.Hour) // each has had its full reconcile
	}
	watches := clusterOverlapWatches(m, dirty, batch, func(h handler.EventHandler) handler.EventHandler { return batchedPaced(h, batch, pace) })
	send := func(kind client.Object, e event.UpdateEvent) map[string]time.Duration {
		q := &keyedQueue{}
		for _, w := range watches {
			if fmt.Sprintf("%T", w.obj) == fmt.Sprintf("%T", kind) {
				w.handler.Update(ctx, e, q)
			}
		}
		return q.after
	}
	check := func(what string, got, want map[string]time.Duration) {
		t.Helper()
		if !maps.Equal(got, want) {
			t.Errorf("%s: enqueued (after) %v; want %v", what, got, want)
		}
	}
	// mesh's pace is its limit; other has none.
	check("the tenant's LoopbackService", send(tenant, event.UpdateEvent{ObjectOld: tenant, ObjectNew: tenant}), map[string]time.Duration{
		"shop/mesh":  batch, // the closures: the batch period only
		"shop/other": batch,
		"/mesh":      paceLimit, // the audits: their pace
		"/other":     batch,
	})
	// Their audits read the tenant's namespace again, and only it.
	for _, p := range []string{"mesh", "other"} {
		if all, marked := dirty.take(p, now, time.Hour); all || !maps.Equal(marked, map[string]bool{"shop": true}) {
			t.Errorf("%s: the tenant's change marked every namespace %v, namespaces %v; want shop only", p, all, marked)
		}
	}
	check("another cluster policy", send(other, event.UpdateEvent{ObjectOld: other, ObjectNew: other}), map[string]time.Duration{
		"/mesh": batch, // its full reconcile: batched only, whatever its pace
	})
	if all, _ := dirty.take("mesh", now, time.Hour); !all {
		t.Error("another cluster policy's change did not mark every namespace")
	}
}

// keyedQueue records each request's delay by namespace/name.
type keyedQueue struct {
	recordingQueue
	after map[string]time.Duration
}

func (q *keyedQueue) AddWithOpts(o priorityqueue.AddOpts, rs ...reconcile.Request) {
	for _, r := range rs {
		q.AddAfter(r, o.After)
	}
}
func (q *keyedQueue) AddAfter(r reconcile.Request, d time.Duration) {
	if q.after == nil {
		q.after = map[string]time.Duration{}
	}
	q.after[r.Namespace+"/"+r.Name] = d
}
func (q *keyedQueue) Add(r reconcile.Request) { q.AddAfter(r, 0) }
