package netpol

import (
	networkingv1 "k8s.io/api/networking/v1"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/internal/rules"
)

// Closed returns the ports the managed NetworkPolicy of p must keep closed
// in a namespace where the policies applying are applying (p among them or
// not): p's own ports and those of every applying policy whose podSelector
// may select a pod p selects (rules.MayOverlap).
//
// NetworkPolicies are a union: a NetworkPolicy of p admitting every port
// but p's would re-open, on a pod another policy also selects, the ports
// that policy protects. Closing every overlapping policy's ports in each
// managed NetworkPolicy means no union of them admits a port a policy
// selecting the pod protects. Overlap is decided from the selectors, not
// from the pods of the moment, so a pod created later with labels both
// select is covered before it exists. A policy selecting every pod
// overlaps every other: its ports are closed by all of them, and all of
// theirs by it.
func Closed(p *rules.Policy, applying []*rules.Policy) []rules.PortRange {
	out := append([]rules.PortRange{}, p.Ports...)
	for _, q := range applying {
		if q == p || q.Ref == p.Ref || !rules.MayOverlap(p.Selector, q.Selector) {
			continue
		}
		out = append(out, q.Ports...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.From != b.From {
			return a.From < b.From
		}
		return a.To < b.To
	})
	return out
}

// DesiredFor is the spec of p's managed NetworkPolicy in a namespace where
// the policies applying are applying: Desired with the ports of Closed.
func DesiredFor(podSelector metav1.LabelSelector, p *rules.Policy, applying []*rules.Policy) networkingv1.NetworkPolicySpec {
	return Desired(podSelector, Closed(p, applying))
}
