package integration

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/clusterindex"
)

// TestClusterIndexAnswersAcrossNamespaces: an index of clusterindex, on a
// real informer cache, answers List with MatchingFields across namespaces
// (the lookups by pod IP and node rely on it, and on controller-runtime's
// naming of its indexes), and finds nothing within one namespace, as its
// documentation says.
func TestClusterIndexAnswersAcrossNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := env.Client
	for _, ns := range []string{"ci-a", "ci-b"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
		for name, node := range map[string]string{"on-n1": "ci-n1", "on-n2": "ci-n2"} {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1"}}}}
			if err := c.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
		}
	}
	ca, err := cache.New(env.Config, cache.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	const field = "test.loopguard.io/node"
	if err := clusterindex.Register(ctx, ca, &corev1.Pod{}, field, func(o client.Object) []string {
		return []string{o.(*corev1.Pod).Spec.NodeName}
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	list := func(opts ...client.ListOption) ([]string, error) {
		var l corev1.PodList
		if err := ca.List(ctx, &l, append(opts, client.MatchingFields{field: "ci-n1"})...); err != nil {
			return nil, err
		}
		var out []string
		for _, p := range l.Items {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return out, nil
	}
	var got []string
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		got, err = list()
		return len(got) == 2, err
	}); err != nil {
		t.Fatalf("pods on ci-n1 across namespaces: %v (%v), want ci-a/on-n1 and ci-b/on-n1", got, err)
	}
	for _, p := range got {
		if p != "ci-a/on-n1" && p != "ci-b/on-n1" {
			t.Errorf("pods on ci-n1: %v", got)
		}
	}
	if in, err := list(client.InNamespace("ci-a")); err != nil || len(in) != 0 {
		t.Errorf("within namespace ci-a: %v (%v), want nothing (the index keeps cluster-wide keys only)", in, err)
	}

	// PodsInNamespace: the namespace's pods, the cache's own objects (no
	// copy: the same pointers twice), and through a plain client the same
	// pods by a List.
	names := func(pods []*corev1.Pod) map[string]bool {
		out := map[string]bool{}
		for _, p := range pods {
			out[p.Namespace+"/"+p.Name] = true
		}
		return out
	}
	want := map[string]bool{"ci-b/on-n1": true, "ci-b/on-n2": true}
	first, err := clusterindex.PodsInNamespace(ctx, ca, "ci-b")
	if err != nil || !maps.Equal(names(first), want) {
		t.Fatalf("PodsInNamespace(ci-b) from the cache: %v (%v), want %v", names(first), err, want)
	}
	again, _ := clusterindex.PodsInNamespace(ctx, ca, "ci-b")
	for i := range first {
		if !slices.Contains(again, first[i]) {
			t.Errorf("pod %s/%s read twice is two objects: PodsInNamespace copies", first[i].Namespace, first[i].Name)
		}
	}
	if listed, err := clusterindex.PodsInNamespace(ctx, c, "ci-b"); err != nil || !maps.Equal(names(listed), want) {
		t.Errorf("PodsInNamespace(ci-b) through a client: %v (%v), want %v", names(listed), err, want)
	}
}
