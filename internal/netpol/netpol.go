// Package netpol computes the NetworkPolicy loopguard manages for a policy
// (ingress allowed on every port except the protected ones) and finds other
// NetworkPolicies that re-open a protected port. Pure functions, shared by
// the controller and the CLI.
package netpol

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// Protocols a NetworkPolicy port list can name; ICMP and other protocols
// without ports cannot be listed, so a ports list never admits them.
var Protocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

// Labels loopguard puts on the NetworkPolicies it manages.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "loopguard"
	LabelPolicy    = "loopguard.io/policy"
)

// FinalizerPodsGone keeps a managed NetworkPolicy of a terminating
// namespace until no pod it protects runs there any more: the namespace
// controller deletes NetworkPolicies and pods in no set order, and a policy
// gone before its pods leaves their ports open (CVE-2024-7598).
const FinalizerPodsGone = "loopguard.io/pods-gone"

// AllowedPorts returns the NetworkPolicy ports that admit every port of
// every protocol except the protected ranges: for each protocol, the
// complement of the union of its ranges within 1..65535, as port/endPort
// ranges, or the whole protocol when nothing of it is protected.
func AllowedPorts(protected []rules.PortRange) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for _, proto := range Protocols {
		var rs [][2]int32
		for _, r := range protected {
			if r.Protocol == proto {
				rs = append(rs, [2]int32{r.From, r.To})
			}
		}
		p := proto
		if len(rs) == 0 {
			out = append(out, networkingv1.NetworkPolicyPort{Protocol: &p})
			continue
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
		next := int32(1) // first port not yet covered by the complement
		emit := func(from, to int32) {
			pp := networkingv1.NetworkPolicyPort{Protocol: &p, Port: ptr(intstr.FromInt32(from))}
			if to > from {
				pp.EndPort = ptr(to)
			}
			out = append(out, pp)
		}
		for _, r := range rs {
			if r[0] > next {
				emit(next, r[0]-1)
			}
			if r[1]+1 > next {
				next = r[1] + 1
			}
		}
		if next <= 65535 {
			emit(next, 65535)
		}
	}
	return out
}

// Desired returns the spec of the NetworkPolicy that keeps the protected
// ports of the selected pods closed to ingress.
// When every port of every protocol is protected there is nothing to admit,
// and the policy has no ingress rule at all: an ingress rule with an empty
// ports list would admit every port.
func Desired(podSelector metav1.LabelSelector, protected []rules.PortRange) networkingv1.NetworkPolicySpec {
	spec := networkingv1.NetworkPolicySpec{
		PodSelector: podSelector,
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
	}
	if allowed := AllowedPorts(protected); len(allowed) > 0 {
		spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: allowed}}
	}
	return spec
}

// Conflict is another NetworkPolicy that admits ingress to a protected port
// of a protected pod (rules.Conflict: rules.Audit finds them).
type Conflict = rules.Conflict

// Conflicts finds the ingress rules of np that admit a protected port of a
// pod the policy protects (rules.NetworkPolicyConflicts).
func Conflicts(np *networkingv1.NetworkPolicy, p *rules.Policy, pods []*podview.Pod) []Conflict {
	return rules.NetworkPolicyConflicts(np, p, pods)
}

func ptr[T any](v T) *T { return &v }
