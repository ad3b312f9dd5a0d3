package controllers

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNodeSeriesReplacesOnlyItsNodesSeries: a node's new rows replace its
// old ones (a pod gone, a pod no longer critical) and leave every other
// node's series alone.
func TestNodeSeriesReplacesOnlyItsNodesSeries(t *testing.T) {
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t"}, []string{"namespace", "pod", "node", "critical"})
	s := newNodeSeries(vec)
	s.set("a", [][]string{{"ns", "agent", "a", "true"}, {"ns", "exporter", "a", "false"}})
	s.set("b", [][]string{{"ns", "agent", "b", "true"}})
	s.set("a", [][]string{{"ns", "agent", "a", "false"}})
	// Read only after the count: WithLabelValues makes a missing series.
	has := func(lv ...string) bool { return testutil.ToFloat64(vec.WithLabelValues(lv...)) == 1 }
	if n := testutil.CollectAndCount(vec); n != 2 {
		t.Fatalf("want 2 series (a's agent not critical, b's agent), got %d", n)
	}
	if !has("ns", "agent", "a", "false") || !has("ns", "agent", "b", "true") {
		t.Fatal("a's new series or b's series is missing")
	}
	s.set("a", nil)
	if n := testutil.CollectAndCount(vec); n != 1 {
		t.Fatalf("want only b's series once a has none, got %d", n)
	}
}
