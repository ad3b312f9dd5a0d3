package rules

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
)

// ProtectedRanges returns the port ranges that the policies of env which
// select a pod with these labels protect, sorted by protocol and port and
// without duplicates (names dropped). The node agent checks exactly these
// ports of the pod's sockets; nil means no policy protects the pod.
func ProtectedRanges(env *Env, podLabels map[string]string) []PortRange {
	if env.Empty() {
		return nil
	}
	var out []PortRange
	for _, p := range env.MatchingPolicies(labels.Set(podLabels)) {
		for _, r := range p.Ports {
			r.Name = ""
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b PortRange) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return slices.Compact(out)
}
