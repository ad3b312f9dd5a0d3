package podview_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/loopguard/loopguard/internal/podview"
)

// TestInformerStoresPods runs a client-go shared informer (what
// controller-runtime's cache wraps) over a fake list and watch with
// NewTransform: the store and the index hold *podview.Pod, and the event
// handlers receive it for adds, updates and deletes.
func TestInformerStoresPods(t *testing.T) {
	// A plain list and watch: the fake watch sends no initial events.
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	fw := watch.NewFake()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: []corev1.Pod{*decodedPod(0), *decodedPod(2), *decodedPod(4)}}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return fw, nil },
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	if err := inf.SetTransform(podview.NewTransform()); err != nil {
		t.Fatal(err)
	}
	if err := inf.AddIndexers(viewIndexers); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	delivered := make(chan struct{}, 16)
	record := func(what string, o any) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, what+" "+reflect.TypeOf(o).String())
		delivered <- struct{}{}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { record("add", o) },
		UpdateFunc: func(_, n any) { record("update", n) },
		DeleteFunc: func(o any) { record("delete", o) },
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("not synced")
	}
	changed := decodedPod(2)
	changed.ResourceVersion = "2"
	changed.Labels["tier"] = "t9"
	fw.Modify(changed)
	fw.Delete(decodedPod(4))
	// Three adds, the update and the delete, each handed to the handler.
	for i := range 5 {
		select {
		case <-delivered:
		case <-time.After(time.Minute):
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			t.Fatalf("%d of 5 events delivered: %v", i, got)
		}
	}
	mu.Lock()
	got := strings.Join(seen, ", ")
	mu.Unlock()
	if want := "add *podview.Pod, add *podview.Pod, add *podview.Pod, update *podview.Pod, delete *podview.Pod"; got != want {
		t.Errorf("events: %s, want %s", got, want)
	}
	o, ok, _ := inf.GetIndexer().GetByKey(changed.Namespace + "/" + changed.Name)
	if p, isView := o.(*podview.Pod); !ok || !isView || p.Labels["tier"] != "t9" || p.NodeName != changed.Spec.NodeName {
		t.Errorf("store holds %#v", o)
	}
	byNode, err := inf.GetIndexer().ByIndex("field:loopguard.io/node", "__all_namespaces/"+changed.Spec.NodeName)
	if err != nil || len(byNode) != 1 {
		t.Errorf("by node: %d pods, %v", len(byNode), err)
	}

	// What controller-runtime's CacheReader then does with it: List's
	// SetList into a PodList, Get's assignability check.
	err = apimeta.SetList(&corev1.PodList{}, []runtime.Object{o.(runtime.Object)})
	t.Logf("List into a PodList: %v", err)
	if err == nil {
		t.Error("SetList accepted a podview.Pod")
	}
	if err := apimeta.SetList(&corev1.PodList{}, nil); err != nil {
		t.Errorf("an empty List fails: %v", err)
	}
	if reflect.TypeOf(o).AssignableTo(reflect.TypeOf(&corev1.Pod{})) {
		t.Error("Get would accept a podview.Pod")
	}
}
