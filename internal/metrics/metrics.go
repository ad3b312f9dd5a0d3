// Package metrics defines loopguard's Prometheus metrics. Register adds them
// to controller-runtime's registry, which the manager serves on /metrics.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loopguard/loopguard/internal/version"
)

var (
	// AdmissionDecisions counts admission reviews by kind, operation,
	// namespace and decision (allow, deny, warn, audit, error).
	AdmissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopguard_admission_decisions_total",
		Help: "Admission reviews by object kind, operation, namespace and decision.",
	}, []string{"kind", "operation", "namespace", "decision"})

	// AdmissionDuration observes the time spent on one review, decode to
	// decision.
	AdmissionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "loopguard_admission_duration_seconds",
		Help:    "Time to evaluate one admission review, by object kind.",
		Buckets: []float64{0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25},
	}, []string{"kind"})

	// HostNetworkPodInfo has one series per hostNetwork pod in the
	// cluster; critical is "true" when a policy selects the pod.
	HostNetworkPodInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loopguard_hostnetwork_pod_info",
		Help: "Every hostNetwork pod, by node; critical=true when a loopguard policy selects it (its loopback-only ports are on the node).",
	}, []string{"namespace", "pod", "node", "critical"})

	// NodeMatePodInfo has one series per pod that can enter the network
	// namespace of a protected pod on its node.
	NodeMatePodInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loopguard_node_mate_pod_info",
		Help: "Every pod that can enter the network namespace of a protected pod on its node, by node.",
	}, []string{"namespace", "pod", "node"})

	// PortForwards counts port-forward requests to protected pods by
	// namespace and decision (deny, audit, allow).
	PortForwards = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopguard_portforward_total",
		Help: "Port-forward requests to pods a loopguard policy selects, by namespace and decision.",
	}, []string{"namespace", "decision"})

	// PodAccess counts the ways into protected pods through the API server
	// (access: port-forward, exec, attach, debug, proxy) by namespace and
	// decision (deny, audit, allow). Port-forwards are also counted in
	// PortForwards, which dashboards use.
	PodAccess = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopguard_pod_access_total",
		Help: "Port-forward, exec, attach, debug and proxy requests to protected pods, by namespace, access and decision.",
	}, []string{"namespace", "access", "decision"})

	// BuildInfo is 1, labelled with the build's version (make release stamps
	// it), commit and Go version: `loopguard_build_info{version="v0.1.0"}`.
	BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loopguard_build_info",
		Help: "Always 1; the labels say which loopguard build runs (version, commit, goversion).",
	}, []string{"version", "commit", "goversion"})

	once sync.Once
)

// Register adds the metrics to controller-runtime's registry; it is safe to
// call more than once.
func Register() {
	once.Do(func() {
		BuildInfo.WithLabelValues(version.Get(), version.GetCommit(), version.GoVersion()).Set(1)
		crmetrics.Registry.MustRegister(BuildInfo, AdmissionDecisions, AdmissionDuration, HostNetworkPodInfo, NodeMatePodInfo, PortForwards, PodAccess, Policies)
		registerObserve()
	})
}
