package main

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// changes times how long a changed pod and a changed report take to show
// in a policy's status: pod 0 (app=a0) is relabelled out of policy 0, and
// pod 1's agent reports a listener on 0.0.0.0 at the port of the policy
// selecting app=a1 in the same namespace.
func (b *bench) changes(ctx context.Context, ag *agents) {
	p0, pol0 := b.size.Pod(0), b.size.Policy(0)
	patch := []byte(`{"metadata":{"labels":{"app":"moved"}}}`)
	if _, err := b.cs.CoreV1().Pods(p0.NS).Patch(ctx, p0.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		fail(err)
	}
	d := waitFor("changed pod", 5*time.Minute, func() bool {
		u, err := b.dyn.Resource(lbsGVR).Namespace(pol0.NS).Get(ctx, pol0.Name, metav1.GetOptions{})
		mp, _, _ := unstructured.NestedInt64(u.Object, "status", "matchedPods")
		return err == nil && mp == int64(pol0.Matched-1)
	})
	b.logf("changed pod (%s/%s relabelled out of %s) shows in status.matchedPods after %s", p0.NS, p0.Name, pol0.Name, d.Round(time.Millisecond))

	p1, pol2 := b.size.Pod(1), b.size.Policy(2*b.size.Namespaces)
	ag.setListener(1, int64(pol2.Port))
	d = waitFor("changed report", 5*time.Minute, func() bool {
		u, err := b.dyn.Resource(lbsGVR).Namespace(pol2.NS).Get(ctx, pol2.Name, metav1.GetOptions{})
		n, _, _ := unstructured.NestedInt64(u.Object, "status", "runtime", "podsBeyondLoopback")
		return err == nil && n >= 1
	})
	b.logf("changed report (%s: %s/%s listens on 0.0.0.0:%d) shows in %s status.runtime after %s", p1.Node, p1.NS, p1.Name, pol2.Port, pol2.Name, d.Round(time.Millisecond))
}

// waitRunning waits until kwok has every bench pod Running, then until
// kwok has stopped writing pod status, so that the policies are measured
// against a settled cluster.
func (b *bench) waitRunning(ctx context.Context) {
	d := b.running.waitAtLeast(b, b.size.Pods, 60*time.Minute)
	b.logf("every pod Running (kwok) %s after the last creation", d.Round(time.Second))
	b.waitKwokQuiet(ctx, 30*time.Second, 20*time.Minute)
}

// cleanup deletes what the run made; the namespaces' contents and the
// reports (owned by their nodes) go in the background.
func (b *bench) cleanup(ctx context.Context) {
	b.logf("cleaning up (namespaces and nodes deleted in the background)")
	for c := 0; c < b.size.ClusterPolicies; c++ {
		_ = b.dyn.Resource(clbsGVR).Delete(ctx, b.size.ClusterPolicy(c).Name, metav1.DeleteOptions{})
	}
	_ = b.cs.CoreV1().Namespaces().Delete(ctx, admissionNS, metav1.DeleteOptions{})
	for i := 0; i < b.size.Namespaces; i++ {
		_ = b.cs.CoreV1().Namespaces().Delete(ctx, NSName(i), metav1.DeleteOptions{})
	}
	for n := 0; n < b.size.Nodes; n++ {
		_ = b.cs.CoreV1().Nodes().Delete(ctx, NodeName(n), metav1.DeleteOptions{})
		_ = b.dyn.Resource(nbrGVR).Delete(ctx, NodeName(n), metav1.DeleteOptions{})
	}
}
