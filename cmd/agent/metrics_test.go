package main

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestMetricNamesExported checks that every metric hack/observe's
// metric-names.txt gives to the agent (the ones the dashboard and the
// alerts query) is in the agent's registry after a scan of each result.
func TestMetricNamesExported(t *testing.T) {
	registerMetrics()
	observeScan(scanOutcome{}, v1alpha1.NodeBindReportStatus{PodsChecked: 2, PodsBeyondLoopback: 1})
	observeScan(scanOutcome{err: errors.New("boom")}, v1alpha1.NodeBindReportStatus{})
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+s] = true
			}
		}
	}
	f, err := os.Open("../../hack/observe/metric-names.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		fields := strings.Fields(s.Text())
		if len(fields) != 2 || fields[1] != "agent" {
			continue
		}
		n++
		if !exported[fields[0]] {
			t.Errorf("the agent does not export %s, which the dashboard or an alert queries", fields[0])
		}
	}
	if n == 0 {
		t.Error("metric-names.txt lists no agent metric")
	}
}
