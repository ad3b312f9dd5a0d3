package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// kwokAnnotation marks the nodes kwok manages (and only those);
// podIPAnnotation carries a pod's planned IP to the pod-ready stage of
// bin/kwok-config (the same name as its PodIPAnnotation, another module).
const (
	kwokAnnotation  = "kwok.x-k8s.io/node"
	podIPAnnotation = "scale.loopguard.io/pod-ip"
)

// createNodes creates the kwok nodes, each with a pod CIDR of its own (kwok
// gives pods IPs from it) and room for 110 pods.
func (b *bench) createNodes(ctx context.Context) []types.UID {
	uids := make([]types.UID, b.size.Nodes)
	b.parallel("nodes", b.size.Nodes, func(n int) error {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: NodeName(n), Annotations: map[string]string{kwokAnnotation: "fake"},
				Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": NodeName(n)}},
			Spec: corev1.NodeSpec{PodCIDR: PodCIDR(n)},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"),
				corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi")}},
		}
		got, err := b.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err == nil {
			uids[n] = got.UID
		}
		return err
	})
	return uids
}

func (b *bench) createNamespaces(ctx context.Context) {
	b.parallel("namespaces", b.size.Namespaces, func(i int) error {
		_, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: NSName(i), Labels: map[string]string{groupLabel: NSGroup(i)}}}, metav1.CreateOptions{})
		return err
	})
}

// createPods creates pods [from, to) with nodeName set (no scheduler); they
// tolerate unreachable/not-ready nodes for ever, so slowed kwok heartbeats
// never get them evicted. Pod i waits until kwok runs all but kwokBacklog
// of the pods before it.
func (b *bench) createPods(ctx context.Context, from, to int) {
	paced := func(i int) {
		if i%500 == 0 && i > kwokBacklog {
			b.running.waitAtLeast(b, i-kwokBacklog, 30*time.Minute)
		}
	}
	b.parallelRange("pods", from, to, paced, func(i int) error {
		p := b.size.Pod(i)
		var ann map[string]string
		if p.IP != "" {
			ann = map[string]string{podIPAnnotation: p.IP}
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.NS, Annotations: ann,
				Labels: map[string]string{"app": p.App, "tier": p.Tier}},
			Spec: corev1.PodSpec{NodeName: p.Node, HostNetwork: p.HostNetwork,
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
					{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1",
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}
		got, err := b.cs.CoreV1().Pods(p.NS).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			b.podUIDs[i] = got.UID
		}
		return err
	})
}

func policyObject(p PolicyPlan) *unstructured.Unstructured {
	spec := map[string]any{
		"podSelector":       map[string]any{"matchLabels": map[string]any{p.Label: p.Val}},
		"ports":             []any{map[string]any{"port": int64(p.Port)}},
		"enforcementAction": "Audit", "hostNetwork": "Audit",
	}
	kind := "LoopbackService"
	meta := map[string]any{"name": p.Name, "namespace": p.NS}
	if p.Cluster {
		kind = "ClusterLoopbackService"
		spec["namespaceSelector"] = map[string]any{"matchLabels": map[string]any{groupLabel: p.Group}}
		meta = map[string]any{"name": p.Name}
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "loopguard.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}}
}

// createPolicies creates the cluster policies, then the namespaced ones,
// and returns when the last one was created.
func (b *bench) createPolicies(ctx context.Context) time.Time {
	b.parallel("ClusterLoopbackServices", b.size.ClusterPolicies, func(c int) error {
		_, err := b.dyn.Resource(clbsGVR).Create(ctx, policyObject(b.size.ClusterPolicy(c)), metav1.CreateOptions{})
		return err
	})
	b.parallel("LoopbackServices", b.size.Policies, func(j int) error {
		p := b.size.Policy(j)
		_, err := b.dyn.Resource(lbsGVR).Namespace(p.NS).Create(ctx, policyObject(p), metav1.CreateOptions{})
		return err
	})
	return time.Now()
}

// parallel runs f(0..n-1) on b.workers goroutines with progress lines.
func (b *bench) parallel(what string, n int, f func(i int) error) {
	b.parallelRange(what, 0, n, nil, f)
}

// parallelRange runs f(from..to-1) on b.workers goroutines, calling before
// (if any) ahead of handing out each i.
func (b *bench) parallelRange(what string, from, to int, before func(i int), f func(i int) error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done, start := 0, time.Now()
	step := max((to-from)/10, 1)
	ch := make(chan int)
	for w := 0; w < b.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				err := f(i)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s %d: %w", what, i, err)
				}
				done++
				if done%step == 0 && to-from >= 1000 {
					b.logf("created %d/%d %s (%s so far)", from+done, to, what, Rate(done, time.Since(start)))
				}
				mu.Unlock()
			}
		}()
	}
	for i := from; i < to; i++ {
		if before != nil {
			before(i)
		}
		ch <- i
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		fail(firstErr)
	}
	b.logf("created %s %s", what, Rate(to-from, time.Since(start)))
}
