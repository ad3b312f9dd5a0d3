package clusterindex

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// podsOnNodes is a cache of n compact pods, pod i on node i%nodes, with
// the node index the hostNetwork controller reads.
func podsOnNodes(t testing.TB, n, nodes int) informerCache {
	inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, &corev1.Pod{}, 0, toolscache.Indexers{
		toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc,
		indexPrefix + "node": func(o any) ([]string, error) {
			return []string{allPrefix + o.(*podview.Pod).NodeName}, nil
		},
	})
	for i := range n {
		p := podview.Of(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p-%d", i)}})
		p.NodeName = fmt.Sprintf("node-%d", i%nodes)
		if err := inf.GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return informerCache{inf: inf}
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
	inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, &corev1.Namespace{}, 0, toolscache.Indexers{})
	held := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tier": "prod"}}}
	if err := inf.GetIndexer().Add(held); err != nil {
		t.Fatal(err)
	}
	var c client.Reader = informerCache{inf: inf}
	exemplar := &corev1.Namespace{}
	newNS := func() client.Object { return &corev1.Namespace{} }
	got, err := Object(ctx, c, exemplar, newNS, "", "team-a")
	if err != nil || got != held {
		t.Fatalf("Object(team-a) = %p, %v; want the cached %p", got, err, held)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = Object(ctx, c, exemplar, newNS, "", "team-a") }); a > 0 {
		t.Errorf("Object allocates %.0f times a read, want none", a)
	}
	if _, err := Object(ctx, c, exemplar, newNS, "", "gone"); !apierrors.IsNotFound(err) {
		t.Errorf("Object(gone) = %v, want NotFound", err)
	}
}
