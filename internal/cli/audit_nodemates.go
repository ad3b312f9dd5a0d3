package cli

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// reportNodeMate is a pod that can enter the network namespace of a
// protected pod on the same node (internal/hostnet.NodeMateRisks), and so
// reach its loopback-only ports without any NetworkPolicy seeing it.
type reportNodeMate struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node"`
	// Reasons say how, e.g. "privileged container debug".
	Reasons []string `json:"reasons"`
	// Protected are the protected pods on the node (namespace/name), among
	// the pods audit read.
	Protected []string `json:"protected"`
	// Policies select the protected pods.
	Policies []reportPolicy `json:"policies"`
	// Summary says it in a sentence.
	Summary string `json:"summary"`
}

// collectRiskyPod keeps every pod read that can enter other pods' network
// namespaces, whatever its namespace: it is a node-mate of the audited
// pods on its node.
func (st *clusterState) collectRiskyPod(p *podview.Pod) {
	if p.DeletionTimestamp == nil && len(hostnet.NodeMateRisks(p.TrimmedSpec)) > 0 {
		st.riskyPods = append(st.riskyPods, p)
	}
}

// nodeMates reports, with internal/hostnet, the pods that can enter the
// network namespace of a pod a policy selects in the audited namespaces.
func (st *clusterState) nodeMates(envs map[string]*rules.Env, rep *auditReport) {
	if len(st.riskyPods) == 0 {
		return
	}
	policiesOf := map[string][]*rules.Policy{}
	var protected []*podview.Pod
	for _, ns := range sortedKeys(envs) {
		for _, p := range st.pods[ns] {
			if ps := envs[ns].MatchingPolicies(labels.Set(p.Labels)); len(ps) > 0 {
				protected = append(protected, p)
				policiesOf[p.Namespace+"/"+p.Name] = ps
			}
		}
	}
	for _, m := range hostnet.NodeMates(st.riskyPods, protected, func(*podview.Pod) bool { return true }) {
		r := reportNodeMate{Namespace: m.Namespace, Name: m.Name, Node: m.Node, Reasons: m.Details(),
			Protected: m.Protected, Policies: []reportPolicy{}, Summary: m.Summary()}
		seen := map[string]bool{}
		for _, q := range m.Protected {
			for _, p := range policiesOf[q] {
				if s := p.Ref.String(); !seen[s] {
					seen[s] = true
					r.Policies = append(r.Policies, refOf(p.Ref))
				}
			}
		}
		sort.Slice(r.Policies, func(i, j int) bool { return shortPolicy(r.Policies[i]) < shortPolicy(r.Policies[j]) })
		rep.NodeMates = append(rep.NodeMates, r)
	}
}

// nodeMateRows are the rows of audit's node-mates table.
func nodeMateRows(rep *auditReport) [][]string {
	var rows [][]string
	for _, m := range rep.NodeMates {
		rows = append(rows, []string{nsName(m.Namespace, m.Name), m.Node, shortPolicies(m.Policies),
			abbreviate(m.Protected, 3), strings.Join(m.Reasons, "; ")})
	}
	return rows
}
