// Package hostnet analyses hostNetwork pods: their "loopback" is the node's,
// shared with every other hostNetwork pod and node process on that node, and
// NetworkPolicy does not apply to them. Pure functions shared by the
// controller's cluster-wide report and the CLI.
package hostnet

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

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
func Analyze(node string, pods []*corev1.Pod, envFor func(namespace string) *rules.Env) []PodReport {
	var hostPods []*corev1.Pod
	for _, p := range pods {
		if p.Spec.HostNetwork && p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			hostPods = append(hostPods, p)
		}
	}
	sort.Slice(hostPods, func(i, j int) bool {
		return hostPods[i].Namespace+"/"+hostPods[i].Name < hostPods[j].Namespace+"/"+hostPods[j].Name
	})
	out := make([]PodReport, 0, len(hostPods))
	for _, p := range hostPods {
		r := PodReport{Namespace: p.Namespace, Name: p.Name, Node: node}
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			for _, cp := range c.Ports {
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				r.Ports = append(r.Ports, fmt.Sprintf("%d/%s", cp.ContainerPort, proto))
			}
		}
		env := envFor(p.Namespace)
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
		for _, m := range hostPods {
			if m != p {
				r.NodeMates = append(r.NodeMates, m.Namespace+"/"+m.Name)
			}
		}
		out = append(out, r)
	}
	return out
}
