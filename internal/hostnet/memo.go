package hostnet

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// Memo keeps, per node, each hostNetwork pod's report for the inputs it
// was computed from: the pod as stored (UID, resourceVersion) and what
// applies in its namespace (the env's policy sets, immutable and replaced
// on every change, and the namespace's labels). A node's reconcile, brought
// by a change in one of the namespaces of its hostNetwork pods, then
// analyses again only that namespace's pods: with 30 namespaces' pods on
// a node, every policy created in any of them analysed all 30. Safe for
// concurrent use; the zero value is not: use NewMemo.
type Memo struct {
	mu    sync.Mutex
	nodes map[string]map[types.UID]memoEntry
}

type memoEntry struct {
	resourceVersion string
	sets            []*rules.Set
	labels          labels.Labels
	report          PodReport // NodeMates unset: they depend on the node's other pods
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{nodes: map[string]map[types.UID]memoEntry{}} }

// Analyze is the package's Analyze, reusing the reports of pods whose
// inputs did not change, and forgetting those of pods no longer on the
// node. The reports share their slices with the memo: read only. A pod
// without a UID or resourceVersion (not from the API server) is always
// analysed. A nil memo keeps nothing.
func (m *Memo) Analyze(node string, pods []*podview.Pod, envFor func(namespace string) *rules.Env) []PodReport {
	if m == nil {
		return Analyze(node, pods, envFor)
	}
	hostPods := hostNetworkPods(node, pods)
	m.mu.Lock()
	last := m.nodes[node]
	m.mu.Unlock()
	next := make(map[types.UID]memoEntry, len(hostPods))
	out := make([]PodReport, 0, len(hostPods))
	for _, p := range hostPods {
		env := envFor(p.Namespace)
		e, ok := last[p.UID]
		if !ok || p.UID == "" || p.ResourceVersion == "" || e.resourceVersion != p.ResourceVersion ||
			!slices.Equal(e.sets, env.Sets) || !sameLabels(e.labels, env.NamespaceLabels) {
			e = memoEntry{resourceVersion: p.ResourceVersion, sets: env.Sets, labels: env.NamespaceLabels, report: analyzePod(node, p, env)}
		}
		if p.UID != "" {
			next[p.UID] = e
		}
		out = append(out, e.report)
	}
	m.mu.Lock()
	if len(next) == 0 {
		delete(m.nodes, node)
	} else {
		m.nodes[node] = next
	}
	m.mu.Unlock()
	return withNodeMates(out)
}

// sameLabels compares namespace labels as the index gives them (a
// labels.Set); any other implementation is never the same.
func sameLabels(a, b labels.Labels) bool {
	as, aok := a.(labels.Set)
	bs, bok := b.(labels.Set)
	return aok && bok && labels.Equals(as, bs)
}
