package metrics

import (
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The per-policy gauges. They are not GaugeVecs: a GaugeVec keeps a
// metric object, its label pairs and its hash for every series, about 900
// bytes each, and the seven families below have five to seven series per
// policy: about 45 MB of live heap at 10,000 policies (a heap profile of
// the 150,000-pod bench). PolicyGauges keeps a small record per policy
// and builds the samples when Prometheus scrapes, as kube-state-metrics
// does for objects.
var (
	policyLabels = []string{"policy_kind", "policy_namespace", "policy"}

	violationsDesc = prometheus.NewDesc("loopguard_violations",
		"Existing objects that expose a loopback-only port, per policy and reason.",
		append(slices.Clone(policyLabels), "reason"), nil)
	violationsByActionDesc = prometheus.NewDesc("loopguard_violations_by_action",
		"Existing objects that expose a loopback-only port, per policy and the finding's action (Deny, Warn, Audit).",
		append(slices.Clone(policyLabels), "action"), nil)
	hostNetworkPodsDesc = prometheus.NewDesc("loopguard_hostnetwork_pods",
		"hostNetwork pods selected by a policy.", policyLabels, nil)
	nodeMatePodsDesc = prometheus.NewDesc("loopguard_node_mate_pods",
		"Pods that can enter the network namespace of a pod a policy selects on the same node (privileged, hostPID with SYS_ADMIN/SYS_PTRACE, hostPath of /proc, netns or a runtime socket, hostNetwork with NET_ADMIN).",
		policyLabels, nil)
	podsBeyondLoopbackDesc = prometheus.NewDesc("loopguard_runtime_pods_beyond_loopback",
		"Pods selected by a policy whose protected ports listen beyond loopback, as the node agents observed them.",
		policyLabels, nil)
	runtimeStaleNodesDesc = prometheus.NewDesc("loopguard_runtime_stale_nodes",
		"Nodes running pods a policy selects whose node agent report is stale or missing (capped as status.runtime.staleNodes is).",
		policyLabels, nil)
	runtimeUnexpectedClientsDesc = prometheus.NewDesc("loopguard_runtime_unexpected_clients",
		"Distinct unexpected clients connected on loopback to protected ports of pods a policy selects, as the node agents sampled them.",
		policyLabels, nil)
)

// Policies holds every policy's gauges; Register exports it.
var Policies = NewPolicyGauges()

// PolicyKey names a policy in the gauges' labels.
type PolicyKey struct{ Kind, Namespace, Name string }

// Count is one labelled value of a family with an extra label (a reason
// or an action).
type Count struct {
	Label string
	N     int32
}

// policyValues is one policy's record. A family the policy has no value
// for yet exports no series (hasPods, hasRuntime false; no counts).
type policyValues struct {
	reasons, actions          []Count
	hostNetwork, nodeMates    int32
	beyond, stale, unexpected int32
	hasPods, hasRuntime       bool
}

func (v *policyValues) empty() bool {
	return len(v.reasons) == 0 && len(v.actions) == 0 && !v.hasPods && !v.hasRuntime
}

// PolicyGauges is a prometheus.Collector of the per-policy gauges.
type PolicyGauges struct {
	mu    sync.Mutex
	byKey map[PolicyKey]*policyValues
}

// NewPolicyGauges returns an empty collector (tests make their own).
func NewPolicyGauges() *PolicyGauges {
	return &PolicyGauges{byKey: map[PolicyKey]*policyValues{}}
}

// update applies f to k's record, creating it, and drops a record left
// empty.
func (g *PolicyGauges) update(k PolicyKey, f func(*policyValues)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.byKey[k]
	if v == nil {
		v = &policyValues{}
	}
	f(v)
	if v.empty() {
		delete(g.byKey, k)
		return
	}
	g.byKey[k] = v
}

// SetFindings replaces k's loopguard_violations and
// loopguard_violations_by_action series: one per reason and per action
// with a non-zero count; none for an empty map.
func (g *PolicyGauges) SetFindings(k PolicyKey, byReason, byAction map[string]int) {
	reasons, actions := counts(byReason), counts(byAction)
	g.update(k, func(v *policyValues) { v.reasons, v.actions = reasons, actions })
}

// SetPods sets k's hostNetwork and node-mate pod gauges.
func (g *PolicyGauges) SetPods(k PolicyKey, hostNetwork, nodeMates int) {
	g.update(k, func(v *policyValues) {
		v.hostNetwork, v.nodeMates, v.hasPods = int32(hostNetwork), int32(nodeMates), true
	})
}

// SetRuntime sets k's runtime gauges (pods beyond loopback, stale nodes,
// unexpected clients).
func (g *PolicyGauges) SetRuntime(k PolicyKey, beyond, stale, unexpected int) {
	g.update(k, func(v *policyValues) {
		v.beyond, v.stale, v.unexpected, v.hasRuntime = int32(beyond), int32(stale), int32(unexpected), true
	})
}

// ForgetRuntime drops k's runtime gauges.
func (g *PolicyGauges) ForgetRuntime(k PolicyKey) {
	g.update(k, func(v *policyValues) { v.beyond, v.stale, v.unexpected, v.hasRuntime = 0, 0, 0, false })
}

// ForgetAudit drops k's findings and pod gauges (the policy reconciler's;
// the runtime controller drops its own).
func (g *PolicyGauges) ForgetAudit(k PolicyKey) {
	g.update(k, func(v *policyValues) {
		v.reasons, v.actions = nil, nil
		v.hostNetwork, v.nodeMates, v.hasPods = 0, 0, false
	})
}

func counts(m map[string]int) []Count {
	if len(m) == 0 {
		return nil
	}
	out := make([]Count, 0, len(m))
	for _, l := range slices.Sorted(maps.Keys(m)) {
		if m[l] != 0 {
			out = append(out, Count{Label: l, N: int32(m[l])})
		}
	}
	return out
}

// Describe sends the seven families' descriptions.
func (g *PolicyGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{violationsDesc, violationsByActionDesc, hostNetworkPodsDesc, nodeMatePodsDesc, podsBeyondLoopbackDesc, runtimeStaleNodesDesc, runtimeUnexpectedClientsDesc} {
		ch <- d
	}
}

// Collect builds the samples from a copy of the records taken under the
// lock, so that a slow scrape never holds up a reconcile.
func (g *PolicyGauges) Collect(ch chan<- prometheus.Metric) {
	type entry struct {
		k PolicyKey
		v policyValues
	}
	g.mu.Lock()
	all := make([]entry, 0, len(g.byKey))
	for k, v := range g.byKey {
		all = append(all, entry{k, *v}) // the slices are replaced, never changed in place
	}
	g.mu.Unlock()
	for _, e := range all {
		k, v := e.k, &e.v
		gauge := func(d *prometheus.Desc, n int32, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n), append([]string{k.Kind, k.Namespace, k.Name}, extra...)...)
		}
		for _, c := range v.reasons {
			gauge(violationsDesc, c.N, c.Label)
		}
		for _, c := range v.actions {
			gauge(violationsByActionDesc, c.N, c.Label)
		}
		if v.hasPods {
			gauge(hostNetworkPodsDesc, v.hostNetwork)
			gauge(nodeMatePodsDesc, v.nodeMates)
		}
		if v.hasRuntime {
			gauge(podsBeyondLoopbackDesc, v.beyond)
			gauge(runtimeStaleNodesDesc, v.stale)
			gauge(runtimeUnexpectedClientsDesc, v.unexpected)
		}
	}
}
