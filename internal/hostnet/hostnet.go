// Package hostnet analyses hostNetwork pods: their "loopback" is the node's,
// shared with every other hostNetwork pod and node process on that node, and
// NetworkPolicy does not apply to them. Pure functions shared by the
// controller's cluster-wide report and the CLI.
package hostnet

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// PodReport is what is known about one hostNetwork pod.
type PodReport struct {
	Namespace, Name, Node string
	// Ports are the ports its containers declare, e.g. "15000/TCP".
	Ports []string
	// Policies are the policies that select it (critical: their
	// loopback-only ports live on the node's loopback).
	Policies []string
	// ProtectedPorts are declared ports that a selecting policy protects:
	// served on the node's network.
	ProtectedPorts []string
	// NodeMates are the other hostNetwork pods on the same node
	// (namespace/name), which share its loopback.
	NodeMates []string
}

// Critical reports whether a policy selects the pod.
func (r PodReport) Critical() bool { return len(r.Policies) > 0 }

// Summary is a one-line description for reports and Events.
func (r PodReport) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostNetwork pod %s/%s on node %q shares the node's loopback", r.Namespace, r.Name, r.Node)
	if len(r.NodeMates) > 0 {
		fmt.Fprintf(&b, " with %d other hostNetwork pods (%s)", len(r.NodeMates), strings.Join(r.NodeMates, ", "))
	}
	b.WriteString(" and every node process")
	if len(r.Policies) > 0 {
		fmt.Fprintf(&b, "; it is selected by %s, whose loopback-only ports are therefore on the node", strings.Join(r.Policies, " and "))
	}
	if len(r.ProtectedPorts) > 0 {
		fmt.Fprintf(&b, "; it declares protected ports %s on the node's network", strings.Join(r.ProtectedPorts, ", "))
	}
	return b.String()
}

// Analyze reports on the hostNetwork pods of one node. envFor returns the
// policies that apply in a namespace (the webhook's index).
func Analyze(node string, pods []*podview.Pod, envFor func(namespace string) *rules.Env) []PodReport {
	hostPods := hostNetworkPods(node, pods)
	out := make([]PodReport, 0, len(hostPods))
	for _, p := range hostPods {
		out = append(out, analyzePod(node, p, envFor(p.Namespace)))
	}
	return withNodeMates(out)
}

// hostNetworkPods are the pods of node that use its network and are not
// being deleted, by namespace/name.
func hostNetworkPods(node string, pods []*podview.Pod) []*podview.Pod {
	var hostPods []*podview.Pod
	for _, p := range pods {
		if p.TrimmedSpec.HostNetwork && p.NodeName == node && p.DeletionTimestamp == nil {
			hostPods = append(hostPods, p)
		}
	}
	keys := make(map[*podview.Pod]string, len(hostPods))
	for _, p := range hostPods {
		keys[p] = p.Namespace + "/" + p.Name
	}
	sort.Slice(hostPods, func(i, j int) bool { return keys[hostPods[i]] < keys[hostPods[j]] })
	return hostPods
}

// analyzePod reports on one hostNetwork pod, NodeMates aside.
func analyzePod(node string, p *podview.Pod, env *rules.Env) PodReport {
	r := PodReport{Namespace: p.Namespace, Name: p.Name, Node: node}
	for _, cs := range [][]corev1.Container{p.TrimmedSpec.InitContainers, p.TrimmedSpec.Containers} {
		for _, c := range cs {
			for _, cp := range c.Ports {
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				r.Ports = append(r.Ports, fmt.Sprintf("%d/%s", cp.ContainerPort, proto))
			}
		}
	}
	for _, pol := range env.MatchingPolicies(labels.Set(p.Labels)) {
		r.Policies = append(r.Policies, pol.Ref.String())
	}
	sort.Strings(r.Policies)
	tmpl, _ := rules.PodTemplateOf(p)
	for _, f := range rules.EvaluatePod(env, tmpl) {
		if f.Reason == rules.ReasonContainerPort || f.Reason == rules.ReasonHostPort {
			r.ProtectedPorts = append(r.ProtectedPorts, fmt.Sprintf("%d/%s", f.Port, f.Protocol))
		}
	}
	// Clipped: a caller appending to a memo's report must not write into
	// the memo's arrays.
	r.Ports, r.Policies, r.ProtectedPorts = slices.Clip(r.Ports), slices.Clip(r.Policies), slices.Clip(r.ProtectedPorts)
	return r
}

// withNodeMates sets each report's NodeMates: every other pod reported,
// in a slice of its own per report.
func withNodeMates(reports []PodReport) []PodReport {
	if len(reports) < 2 {
		return reports
	}
	names := make([]string, len(reports))
	for i, r := range reports {
		names[i] = r.Namespace + "/" + r.Name
	}
	for i := range reports {
		mates := make([]string, 0, len(names)-1)
		mates = append(mates, names[:i]...)
		reports[i].NodeMates = append(mates, names[i+1:]...)
	}
	return reports
}
