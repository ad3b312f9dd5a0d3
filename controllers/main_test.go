package controllers_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/metrics/metricstest"
	"github.com/loopguard/loopguard/test/testenv"
)

// env runs etcd, kube-apiserver, kube-controller-manager (so garbage
// collection is real) and loopguard's manager.
var env *testenv.Env

func TestMain(m *testing.M) {
	reports, err := testenv.OpenReportsCRDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(1)
	}
	anp, err := testenv.AdminNetworkPolicyCRDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(1)
	}
	if env, err = testenv.Start(testenv.Options{Manager: true, ControllerManager: true, ExtraCRDs: []string{reports, anp}}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the test control plane: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// policyGauge is the value of a per-policy family's series of the
// manager's gauges (metrics.Policies) as a scrape shows it; 0 when the
// series is absent, as a GaugeVec's WithLabelValues gave (a test that
// expects 0 also checks policyGaugeExported).
func policyGauge(t testing.TB, family, kind, namespace, name string) float64 {
	t.Helper()
	v, _ := policySeries(t, family, kind, namespace, name)
	return v
}

// policyGaugeExported says whether the series is exported at all.
func policyGaugeExported(t testing.TB, family, kind, namespace, name string) func() bool {
	return func() bool {
		_, ok := policySeries(t, family, kind, namespace, name)
		return ok
	}
}

func policySeries(t testing.TB, family, kind, namespace, name string) (float64, bool) {
	t.Helper()
	got, err := metricstest.Scrape(metrics.Policies)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := got[metricstest.PolicySeries(family, metrics.PolicyKey{Kind: kind, Namespace: namespace, Name: name})]
	return v, ok
}
