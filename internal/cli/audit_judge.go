package cli

import (
	"sort"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// judge audits one namespace (rules.Audit): its objects, and the
// NetworkPolicies that defeat each applicable policy.
func (st *clusterState) judge(env *rules.Env, rep *auditReport) {
	ns := env.Namespace
	nps := st.netpols[ns]
	sort.Slice(nps, func(i, j int) bool { return nps[i].Name < nps[j].Name })
	// Every NetworkPolicy is judged, loopguard's own included: a label
	// anyone with edit can write proves nothing, and loopguard's own close
	// every overlapping policy's ports (netpol.Closed), so they show here
	// only while one is out of date, which is when they do re-open a port.
	res := rules.Audit(rules.Snapshot{Env: env, Pods: st.pods[ns], Services: st.services[ns], Workloads: st.workloads[ns], NetworkPolicies: nps})
	rep.Summary.Objects += len(res.Judged)
	findings := res.Findings()
	sortFindings(findings, func(f rules.Finding) string { return f.Object.Kind })
	for _, f := range findings {
		rep.Findings = append(rep.Findings, newReportFinding(f))
	}
	for _, cf := range res.Conflicts {
		rep.Conflicts = append(rep.Conflicts, reportConflict{
			Policy: refOf(cf.Policy), Namespace: cf.Namespace, NetworkPolicy: cf.Name, Rule: cf.Rule,
			Ports: cf.Port.String(), Reason: cf.Reason,
		})
	}
}

// hostNetworkPods reports, with internal/hostnet, the hostNetwork pods of
// the audited namespaces that a policy selects, with the protected ports
// they serve on the node and the pods they share the node's loopback with.
func (st *clusterState) hostNetworkPods(envs map[string]*rules.Env, rep *auditReport) {
	envFor := func(ns string) *rules.Env {
		if e, ok := envs[ns]; ok {
			return e
		}
		return rules.NewEnv(ns, nil)
	}
	byNode := map[string][]*podview.Pod{}
	for _, p := range st.hostPods {
		byNode[p.NodeName] = append(byNode[p.NodeName], p)
	}
	var reports []hostnet.PodReport
	for _, node := range sortedKeys(byNode) {
		if node == "" {
			// Unscheduled pods share no node with anyone yet.
			for _, p := range byNode[node] {
				reports = append(reports, hostnet.Analyze("", []*podview.Pod{p}, envFor)...)
			}
			continue
		}
		reports = append(reports, hostnet.Analyze(node, byNode[node], envFor)...)
	}
	sort.SliceStable(reports, func(i, j int) bool {
		return reports[i].Namespace+"/"+reports[i].Name < reports[j].Namespace+"/"+reports[j].Name
	})
	pods := map[string]*podview.Pod{}
	for _, p := range st.hostPods {
		pods[p.Namespace+"/"+p.Name] = p
	}
	for _, r := range reports {
		if !r.Critical() {
			continue
		}
		pod := pods[r.Namespace+"/"+r.Name]
		h := reportHostNetworkPod{
			Namespace: r.Namespace, Name: r.Name, Node: r.Node, Summary: r.Summary(),
			ProtectedPorts: append([]string{}, r.ProtectedPorts...), NodeMates: append([]string{}, r.NodeMates...),
		}
		matching := envFor(r.Namespace).MatchingPolicies(labels.Set(pod.Labels))
		sort.Slice(matching, func(i, j int) bool { return matching[i].Ref.String() < matching[j].Ref.String() })
		for _, p := range matching {
			h.Policies = append(h.Policies, hostNetworkPolicy{reportPolicy: refOf(p.Ref), HostNetwork: string(p.HostNetwork)})
		}
		rep.HostNetworkPods = append(rep.HostNetworkPods, h)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortFindings orders findings by first (the kind, or the namespace), then
// the object's name and the field, keeping the order of each object's own.
func sortFindings(fs []rules.Finding, first func(rules.Finding) string) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if first(a) != first(b) {
			return first(a) < first(b)
		}
		if a.Object.Name != b.Object.Name {
			return a.Object.Name < b.Object.Name
		}
		return a.Field < b.Field
	})
}
