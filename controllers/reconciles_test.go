package controllers_test

import (
	. "github.com/onsi/gomega"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// reconciles is how many reconciles the named controller has finished
// (controller-runtime's controller_runtime_reconcile_total; the manager runs
// in this process). The counter moves after Reconcile returns, so once it has
// moved past a trigger, whatever that reconcile wrote is in the API server.
func reconciles(g Gomega, controller string) float64 {
	return reconcilesWith(g, controller, "")
}

// reconcilesWith counts only the reconciles of one result ("error",
// "success", "requeue", "requeue_after"); "" counts them all.
func reconcilesWith(g Gomega, controller, result string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			ours, kept := false, result == ""
			for _, l := range m.GetLabel() {
				ours = ours || (l.GetName() == "controller" && l.GetValue() == controller)
				kept = kept || (l.GetName() == "result" && l.GetValue() == result)
			}
			if ours && kept {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
