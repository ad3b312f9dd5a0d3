package integration

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/podview"
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
	// The manager's cache: it holds pods as podview.Pods.
	opts := app.CacheOptions()
	opts.Scheme = app.Scheme()
	ca, err := cache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	const field = "test.loopguard.io/node"
	if err := clusterindex.Register(ctx, ca, &corev1.Pod{}, field, func(o client.Object) []string {
		p, _ := podview.From(o)
		return []string{p.NodeName}
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	var got []string
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		pods, err := clusterindex.Pods(ctx, ca, field, "ci-n1")
		got = nil
		for _, p := range pods {
			got = append(got, p.Namespace+"/"+p.Name)
		}
		return len(got) == 2, err
	}); err != nil {
		t.Fatalf("pods on ci-n1 across namespaces: %v (%v), want ci-a/on-n1 and ci-b/on-n1", got, err)
	}
	for _, p := range got {
		if p != "ci-a/on-n1" && p != "ci-b/on-n1" {
			t.Errorf("pods on ci-n1: %v", got)
		}
	}
	var in corev1.PodList // an empty result: the cache reader cannot fail on a podview.Pod
	if err := ca.List(ctx, &in, client.InNamespace("ci-a"), client.MatchingFields{field: "ci-n1"}); err != nil || len(in.Items) != 0 {
		t.Errorf("within namespace ci-a: %d pods (%v), want nothing (the index keeps cluster-wide keys only)", len(in.Items), err)
	}

	// PodsInNamespace: the namespace's pods, the cache's own objects (no
	// copy: the same pointers twice), and through a plain client the same
	// pods by a List.
	names := func(pods []*podview.Pod) map[string]bool {
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

// TestPodCacheHoldsCompactPods: the manager's cache holds pods as
// podview.Pods, so controller-runtime's cache reader refuses a Get or a
// List of corev1.Pods once a pod matches (why every read of pods goes
// through clusterindex, and test/layers forbids the others), and
// clusterindex reads them: one pod by name (NotFound when absent), a
// namespace's pods by labels, with the node name and phase the
// controllers read.
func TestPodCacheHoldsCompactPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := env.Client
	const ns = "ci-compact"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
	for name, tier := range map[string]string{"web-1": "web", "web-2": "web", "db-1": "db"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"tier": tier}},
			Spec: corev1.PodSpec{NodeName: "ci-node", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1",
				Ports: []corev1.ContainerPort{{ContainerPort: 9901}}}}}}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	ca := env.IndexedCache(ctx, t)
	var pods []*podview.Pod
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		var err error
		pods, err = clusterindex.PodsMatching(ctx, ca, ns, labels.SelectorFromSet(labels.Set{"tier": "web"}))
		return len(pods) == 2, err
	}); err != nil {
		t.Fatalf("the web pods of %s: %d (%v), want 2", ns, len(pods), err)
	}
	for _, p := range pods {
		if p.Labels["tier"] != "web" || p.NodeName != "ci-node" || p.TrimmedSpec.Containers[0].Ports[0].ContainerPort != 9901 {
			t.Errorf("pod %s: labels %v, node %q, spec %+v", p.Name, p.Labels, p.NodeName, p.TrimmedSpec)
		}
	}
	p, err := clusterindex.Pod(ctx, ca, ns, "db-1")
	if err != nil || p.Name != "db-1" || p.Labels["tier"] != "db" || p.UID == "" {
		t.Errorf("Pod(db-1): %+v (%v)", p, err)
	}
	if _, err := clusterindex.Pod(ctx, ca, ns, "absent"); !apierrors.IsNotFound(err) {
		t.Errorf("Pod(absent): %v, want NotFound", err)
	}
	// What the moved reads would get from controller-runtime's reader.
	if err := ca.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-1"}, &corev1.Pod{}); err == nil {
		t.Error("a Get of a corev1.Pod from the manager's cache succeeded: the cache does not hold podview.Pods")
	}
	var l corev1.PodList
	if err := ca.List(ctx, &l, client.InNamespace(ns)); err == nil {
		t.Error("a List of corev1.Pods from the manager's cache succeeded: the cache does not hold podview.Pods")
	}
}
