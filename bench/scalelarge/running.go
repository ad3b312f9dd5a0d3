package main

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// runningPods counts the bench's pods that kwok has made Running, from a
// metadata-only watch of pods whose status.phase is Running. Pod creation
// waits on it so that kwok's backlog stays bounded: with 150,000 pods
// created faster than kwok plays them, kwok's watch fell behind, was
// re-listed, and every pod still Pending in that list was played again
// after it ran (226,620 pod status patches for 150,000 pods, still 36/s an
// hour later, competing with the manager for the API server and etcd).
type runningPods struct {
	n atomic.Int64
}

func isBenchPod(ns string) bool { return strings.HasPrefix(ns, "scale-") }

// startRunningPods starts the watch; it stops with ctx.
func startRunningPods(ctx context.Context, cfg *rest.Config) *runningPods {
	r := &runningPods{}
	inf := metadatainformer.NewFilteredMetadataInformer(metadata.NewForConfigOrDie(cfg),
		schema.GroupVersionResource{Version: "v1", Resource: "pods"}, metav1.NamespaceAll, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = "status.phase=Running" }).Informer()
	count := func(o any, d int64) {
		if m, ok := o.(metav1.Object); ok && isBenchPod(m.GetNamespace()) {
			r.n.Add(d)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { count(o, 1) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			count(o, -1)
		},
	})
	go inf.Run(ctx.Done())
	return r
}

// waitAtLeast blocks until at least n bench pods are Running, logging
// progress every 30 s; it fails the run after timeout.
func (r *runningPods) waitAtLeast(b *bench, n int, timeout time.Duration) time.Duration {
	last := time.Now()
	return waitFor("pods Running", timeout, func() bool {
		got := int(r.n.Load())
		if got < n && time.Since(last) > 30*time.Second {
			b.logf("… %d/%d pods Running (waiting for kwok)", got, n)
			last = time.Now()
		}
		return got >= n
	})
}

// kwokBacklog is how many created pods may wait for kwok at once; pod
// creation pauses beyond it.
const kwokBacklog = 5000

// waitKwokQuiet waits until kwok has stopped patching pod status: no
// PATCH pods/status for a whole window, read from the API server's
// request counter (kwok is the only writer of pod status here). It gives
// up after limit and says so, so that a run still measures the manager.
func (b *bench) waitKwokQuiet(ctx context.Context, window, limit time.Duration) {
	patches := func() float64 {
		by, err := b.writesBy(ctx, "pods")
		if err != nil {
			return -1
		}
		sum := 0.0
		for k, v := range by {
			if strings.HasPrefix(k, "PATCH pods/status ") {
				sum += v
			}
		}
		return sum
	}
	start, prev := time.Now(), patches()
	for time.Since(start) < limit {
		time.Sleep(window)
		now := patches()
		if now >= 0 && now == prev {
			b.logf("kwok quiet: no pod status patch in %s (%.0f in all), %s after every pod was Running", window, now, time.Since(start).Round(time.Second))
			return
		}
		b.logf("… kwok still patching pod status: %.0f in the last %s", now-prev, window)
		prev = now
	}
	b.logf("kwok NOT quiet %s after every pod was Running; measuring anyway", limit)
}
