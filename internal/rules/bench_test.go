package rules_test

// Benchmarks of the exposure rules alone (docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchmem ./internal/rules/
//
// BenchmarkEvaluate/<case>/<placement>/policies=<N> measures rules.Evaluate
// on an object already decoded, with the env the policy index returns for
// its namespace and the cluster state the webhook reads from its cache: the
// part of a review whose cost could depend on the number of policies. The
// workload is test/workload's, shared with the webhook benchmarks
// and the load generator. The extra placement one-namespace-same-port
// (every policy also protects 15000/TCP) is the worst case of the port
// index: Set.Covering(15000) returns all N policies.

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/test/workload"
)

// cpuTime returns the CPU time (user and system) of the process so far:
// cpu-ns/op is what an evaluation costs in CPU whatever else the machine
// runs (ns/op is wall time).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// decoded returns the case's object decoded from its JSON, as the webhook
// decodes it, and the cluster state the webhook would read for it.
func decoded(b *testing.B, c workload.Case, env *rules.Env) (runtime.Object, rules.Cluster) {
	b.Helper()
	ctx := context.Background()
	r := workload.NewReader()
	var cluster rules.Cluster
	switch c.Object.(type) {
	case *corev1.Pod:
		pod := &corev1.Pod{}
		if err := json.Unmarshal(c.Raw, pod); err != nil {
			b.Fatal(err)
		}
		var svcs corev1.ServiceList
		if err := r.List(ctx, &svcs, client.InNamespace(env.Namespace)); err != nil {
			b.Fatal(err)
		}
		for i := range svcs.Items {
			cluster.Services = append(cluster.Services, &svcs.Items[i])
		}
		return pod, cluster
	case *corev1.Service:
		svc := &corev1.Service{}
		if err := json.Unmarshal(c.Raw, svc); err != nil {
			b.Fatal(err)
		}
		var pods corev1.PodList
		if err := r.List(ctx, &pods, client.InNamespace(env.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
			b.Fatal(err)
		}
		for i := range pods.Items {
			cluster.Pods = append(cluster.Pods, podview.Of(&pods.Items[i]))
		}
		return svc, cluster
	}
	b.Fatalf("unexpected object %T", c.Object)
	return nil, cluster
}

func BenchmarkEvaluate(b *testing.B) {
	placements := append(append([]workload.Placement{}, workload.Placements...), workload.OneNamespaceSamePort, workload.OneNamespaceAllSelect)
	for _, c := range workload.Cases() {
		b.Run(c.Name, func(b *testing.B) {
			for _, p := range placements {
				b.Run(string(p), func(b *testing.B) {
					for _, n := range workload.PolicyCounts {
						b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
							idx, err := workload.NewIndex(n, p)
							if err != nil {
								b.Fatal(err)
							}
							env := idx.Env(workload.Namespace)
							obj, cluster := decoded(b, c, env)
							// Once, untimed: the decision is the webhook's.
							d := rules.Decide(rules.Evaluate(env, obj, cluster))
							if d.Action != v1alpha1.ActionDeny {
								b.Fatalf("action %q, want Deny; findings %+v", d.Action, d.Findings)
							}
							if err := c.Check(false, d.Messages(v1alpha1.ActionDeny)[0]); err != nil {
								b.Fatal(err)
							}
							b.ReportAllocs()
							cpu0 := cpuTime()
							for b.Loop() {
								if len(rules.Evaluate(env, obj, cluster)) == 0 {
									b.Fatal("no finding")
								}
							}
							b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
						})
					}
				})
			}
		})
	}
}

// BenchmarkNewSet measures building the port index of one namespace
// holding N policies: what the policy index pays, under its write lock, on
// the first review after any policy of that namespace changes.
func BenchmarkNewSet(b *testing.B) {
	for _, n := range workload.PolicyCounts {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			var ps []*rules.Policy
			for _, lbs := range workload.Policies(n, workload.OneNamespace) {
				p, err := rules.Compile(lbs)
				if err != nil {
					b.Fatal(err)
				}
				ps = append(ps, p)
			}
			b.ReportAllocs()
			for b.Loop() {
				if s := rules.NewSet(ps); s.Len() != n {
					b.Fatalf("Len %d, want %d", s.Len(), n)
				}
			}
		})
	}
}
