// Package observe checks loopguard's alerting rules (config/prometheus)
// and Grafana dashboard (config/grafana) with Prometheus' own rule and
// PromQL parsers. It is a module of its own so that loopguard does not
// depend on github.com/prometheus/prometheus.
//
// metric-names.txt lists every metric the rules and the dashboard query,
// with who exports it; the test here keeps it equal to what the queries
// name, and loopguard's own tests check the names against what runs:
// "manager" names against a running manager's /metrics (test/e2e
// TestObservabilityMetricsExported), "agent" names against the agent's
// registry (cmd/agent TestMetricNamesExported). "external" names come from
// Prometheus (up) or the kube-apiserver.
package observe
