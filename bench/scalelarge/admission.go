package main

import (
	"context"
	"fmt"
	"time"

	"github.com/loopguard/loopguard/bench/internal/benchobj"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// admissionNS holds one policy selecting the benchmark pod (bench/apibench's
// pod, app=cart), so every dry-run creation there costs loopguard's full
// evaluation; the same namespace and policy at 1,000 pods and at the
// largest size.
const admissionNS = "scale-admission"

func (b *bench) setupAdmission(ctx context.Context) {
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: admissionNS}}, metav1.CreateOptions{}); err != nil {
		fail(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
		"metadata": map[string]any{"name": "cart", "namespace": admissionNS},
		"spec": map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "cart"}},
			"ports":       []any{map[string]any{"port": int64(15000)}},
		},
	}}
	if _, err := b.dyn.Resource(lbsGVR).Namespace(admissionNS).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		fail(err)
	}
}

// admission times n server-side dry-run pod creations, one at a time, and
// prints p50/p99 (after 20 unmeasured warm-up requests).
func (b *bench) admission(ctx context.Context, label string, n int) (p50, p99 time.Duration) {
	ds := make([]time.Duration, 0, n)
	for i := -20; i < n; i++ {
		start := time.Now()
		_, err := b.cs.CoreV1().Pods(admissionNS).Create(ctx, benchobj.Pod("adm-", admissionNS), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			fail(fmt.Errorf("admission dry-run: %w", err))
		}
		if i >= 0 {
			ds = append(ds, time.Since(start))
		}
	}
	p50, p99 = Percentile(ds, 50), Percentile(ds, 99)
	b.logf("admission at %s: %d dry-run pod creations, p50 %s, p99 %s", label, n, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	return p50, p99
}
