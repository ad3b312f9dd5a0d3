package main

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/version"
)

// The agent's metrics, served on the loopback-only metrics address.
var (
	scanDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "loopguard_agent_scan_duration_seconds",
		Help:    "Duration of one scan of the node's protected pods.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	scansTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopguard_agent_scans_total",
		Help: "Scans of the node, by result (success, error).",
	}, []string{"result"})
	podsBeyondLoopback = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "loopguard_agent_pods_beyond_loopback",
		Help: "Pods of the node with a protected port listening beyond loopback at the last scan.",
	})
	buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loopguard_build_info",
		Help: "Always 1; the labels say which loopguard build runs (version, commit, goversion).",
	}, []string{"version", "commit", "goversion"})
	podsChecked = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "loopguard_agent_pods_checked",
		Help: "Pods of the node checked at the last scan.",
	})
)

func registerMetrics() {
	buildInfo.WithLabelValues(version.Get(), version.GetCommit(), version.GoVersion()).Set(1)
	ctrlmetrics.Registry.MustRegister(buildInfo, scanDuration, scansTotal, podsBeyondLoopback, podsChecked)
}

func observeScan(o scanOutcome, st v1alpha1.NodeBindReportStatus) {
	if o.err != nil {
		scansTotal.WithLabelValues("error").Inc()
		return
	}
	scansTotal.WithLabelValues("success").Inc()
	scanDuration.Observe(o.duration.Seconds())
	podsBeyondLoopback.Set(float64(st.PodsBeyondLoopback))
	podsChecked.Set(float64(st.PodsChecked))
}
