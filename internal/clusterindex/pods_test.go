package clusterindex

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/podview"
)

// informerCache is a cache whose only informer is a pod informer that is
// never started: its indexer is filled by hand. Only GetInformer is
// called; anything else panics on the nil Cache.
type informerCache struct {
	cache.Cache
	inf toolscache.SharedIndexInformer
}

func (c informerCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return c.inf, nil
}

// synced runs an informer of objects whose list is items and whose
// watch never sends, through transform (nil: none), until the test ends;
// it returns once the informer has synced.
func synced(t testing.TB, exemplar runtime.Object, items []runtime.Object, transform toolscache.TransformFunc, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	lw := &toolscache.ListWatch{
		ListFunc: func(metav1.ListOptions) (runtime.Object, error) {
			l := &metav1.List{}
			for _, o := range items {
				l.Items = append(l.Items, runtime.RawExtension{Object: o})
			}
			return l, nil
		},
		WatchFunc: func(metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}
	inf := toolscache.NewSharedIndexInformer(listOnly{lw}, exemplar, 0, indexers)
	if transform != nil {
		if err := inf.SetTransform(transform); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go inf.Run(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("the informer did not sync")
	}
	return inf
}

// listOnly tells the reflector to list, then watch: its list is the
// initial state (no streamed initial events with a bookmark).
type listOnly struct{ *toolscache.ListWatch }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }

// podsOnNodes is a cache of n pods in the manager's compact form, pod i
// on node i%nodes, with the node index the hostNetwork controller reads.
func podsOnNodes(t testing.TB, n, nodes int) informerCache {
	var pods []runtime.Object
	for i := range n {
		pods = append(pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p-%d", i)},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%nodes)}})
	}
	return informerCache{inf: synced(t, &corev1.Pod{}, pods, podview.NewTransform(), toolscache.Indexers{
		toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc,
		indexPrefix + "node": func(o any) ([]string, error) {
			return []string{allPrefix + o.(*podview.Pod).NodeName}, nil
		},
	})}
}

// TestAnUnsyncedCacheIsAnError: an informer that has not synced (a cache
// not started) holds nothing; read as "no pods", it would skip what a
// policy asks for.
func TestAnUnsyncedCacheIsAnError(t *testing.T) {
	inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, &corev1.Pod{}, 0, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	if pods, err := PodsInNamespace(context.Background(), informerCache{inf: inf}, "ns"); err == nil {
		t.Fatalf("PodsInNamespace on an unsynced cache = %d pods, no error", len(pods))
	}
}

// TestIndexReadsAllocateOnlyTheirResult: the hostNetwork controller reads
// the pods of each node of a policy's pods on every policy event (at
// 150,000 pods, a tenth of what the manager allocated while 10,020
// policies converged, most of it a new exemplar pod and error texts built
// for each read). A read of a node with no pod allocates the index's two
// keys; one with pods, its result and the index's list of it too.
func TestIndexReadsAllocateOnlyTheirResult(t *testing.T) {
	ctx := context.Background()
	var c client.Reader = podsOnNodes(t, 100, 10) // as the controllers hold it
	for _, tc := range []struct {
		node string
		pods int
		max  float64
	}{{"node-3", 10, 4}, {"elsewhere", 0, 2}} {
		got, err := Pods(ctx, c, "node", tc.node)
		if err != nil || len(got) != tc.pods {
			t.Fatalf("Pods(node=%s) = %d pods, %v; want %d", tc.node, len(got), err, tc.pods)
		}
		if a := testing.AllocsPerRun(100, func() { _, _ = Pods(ctx, c, "node", tc.node) }); a > tc.max {
			t.Errorf("Pods(node=%s) allocates %.0f times a read, want at most %.0f", tc.node, a, tc.max)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = PodsInNamespace(ctx, c, "ns") }); a > 2 {
		t.Errorf("PodsInNamespace allocates %.0f times a read, want at most 2 (its result and the index's list)", a)
	}
}

func BenchmarkPodsOfANode(b *testing.B) {
	ctx := context.Background()
	c := podsOnNodes(b, 1000, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Pods(ctx, c, "node", "node-7"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPodsOfNoNode(b *testing.B) {
	ctx := context.Background()
	c := podsOnNodes(b, 1000, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Pods(ctx, c, "node", "elsewhere"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestObjectIsTheCachedObject: a node's reconcile reads each of its
// thirty namespaces; the read returns the cached namespace itself, with
// no copy and no allocation, and NotFound for one the cache does not hold.
func TestObjectIsTheCachedObject(t *testing.T) {
	ctx := context.Background()
	held := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tier": "prod"}}}
	inf := synced(t, &corev1.Namespace{}, []runtime.Object{held}, nil, toolscache.Indexers{})
	cached, _, _ := inf.GetIndexer().GetByKey("team-a")
	var c client.Reader = informerCache{inf: inf}
	exemplar := &corev1.Namespace{}
	newNS := func() client.Object { return &corev1.Namespace{} }
	got, err := Object(ctx, c, exemplar, newNS, "", "team-a")
	if err != nil || got != cached {
		t.Fatalf("Object(team-a) = %p, %v; want the cached %p", got, err, cached)
	}
	if _, err := Object(ctx, c, &corev1.Pod{}, func() client.Object { return &corev1.Pod{} }, "", "team-a"); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("Object(a Pod named as the cached Namespace) = %v, want an error saying what the cache holds", err)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = Object(ctx, c, exemplar, newNS, "", "team-a") }); a > 0 {
		t.Errorf("Object allocates %.0f times a read, want none", a)
	}
	if _, err := Object(ctx, c, exemplar, newNS, "", "gone"); !apierrors.IsNotFound(err) {
		t.Errorf("Object(gone) = %v, want NotFound", err)
	}
}
