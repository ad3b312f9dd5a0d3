package policyindex_test

// Benchmarks of the policy index (docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchmem ./internal/policyindex/
//
// BenchmarkEnv is what every review pays first (a read-locked lookup);
// BenchmarkEnvAfterChange is the first review after a policy of the
// reviewed namespace changed, which rebuilds that namespace's port index
// under the write lock (every concurrent review waits for it).

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/test/workload"
)

func BenchmarkEnv(b *testing.B) {
	for _, p := range workload.Placements {
		b.Run(string(p), func(b *testing.B) {
			for _, n := range workload.PolicyCounts {
				b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
					idx, err := workload.NewIndex(n, p)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if idx.Env(workload.Namespace).Empty() {
								b.Fatal("empty env")
							}
						}
					})
				})
			}
		})
	}
}

func BenchmarkEnvAfterChange(b *testing.B) {
	for _, p := range workload.Placements {
		b.Run(string(p), func(b *testing.B) {
			for _, n := range workload.PolicyCounts {
				b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
					idx, err := workload.NewIndex(n, p)
					if err != nil {
						b.Fatal(err)
					}
					guard := workload.Policies(1, p)[0]
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						// Alternate the guard's action: a real change.
						i++
						if i%2 == 0 {
							guard.Spec.EnforcementAction = "Warn"
						} else {
							guard.Spec.EnforcementAction = "Deny"
						}
						if err := idx.SetLoopbackService(guard); err != nil {
							b.Fatal(err)
						}
						if len(idx.Env(workload.Namespace).Sets[0].Covering(corev1.ProtocolTCP, 15000)) == 0 {
							b.Fatal("15000 not covered")
						}
					}
				})
			}
		})
	}
}
