package metrics

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkPolicySeriesMemory reports the live heap per policy of the
// seven per-policy families, for 10,000 policies with two reasons, two
// actions, the pod and the runtime gauges: held as PolicyGauges records,
// and as the GaugeVecs they replaced (same names and labels).
func BenchmarkPolicySeriesMemory(b *testing.B) {
	const policies = 10000
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	key := func(i int) PolicyKey {
		return PolicyKey{Kind: "LoopbackService", Namespace: fmt.Sprintf("ns-%04d", i/7), Name: fmt.Sprintf("lbs-%02d", i%7)}
	}
	reasons := map[string]int{"SelectedByService": 1, "HostPort": 2}
	actions := map[string]int{"Deny": 2, "Warn": 1}
	b.Run("records", func(b *testing.B) {
		for range b.N {
			before := live()
			g := NewPolicyGauges()
			for i := range policies {
				k := key(i)
				g.SetFindings(k, reasons, actions)
				g.SetPods(k, 1, 0)
				g.SetRuntime(k, 0, 1, 0)
			}
			b.ReportMetric(float64(live()-before)/policies, "B/policy")
			runtime.KeepAlive(g)
		}
	})
	b.Run("gaugevecs", func(b *testing.B) {
		for range b.N {
			before := live()
			vec := func(extra ...string) *prometheus.GaugeVec {
				return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, append([]string{"policy_kind", "policy_namespace", "policy"}, extra...))
			}
			v, a, h, n, p, s, u := vec("reason"), vec("action"), vec(), vec(), vec(), vec(), vec()
			for i := range policies {
				k := key(i)
				for r := range reasons {
					v.WithLabelValues(k.Kind, k.Namespace, k.Name, r).Set(1)
				}
				for r := range actions {
					a.WithLabelValues(k.Kind, k.Namespace, k.Name, r).Set(1)
				}
				for _, g := range []*prometheus.GaugeVec{h, n, p, s, u} {
					g.WithLabelValues(k.Kind, k.Namespace, k.Name).Set(1)
				}
			}
			b.ReportMetric(float64(live()-before)/policies, "B/policy")
			runtime.KeepAlive([]any{v, a, h, n, p, s, u})
		}
	})
}
