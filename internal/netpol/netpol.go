// Package netpol computes the NetworkPolicy loopguard manages for a policy
// (ingress allowed on every port except the protected ones) and finds other
// NetworkPolicies that re-open a protected port. Pure functions, shared by
// the controller and the CLI.
package netpol

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

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
// of a protected pod, which defeats the managed one: NetworkPolicy
// allow-lists are unions.
type Conflict struct {
	Name   string
	Rule   int
	Port   rules.PortRange
	Reason string
}

func (c Conflict) String() string {
	return fmt.Sprintf("%s (spec.ingress[%d] %s, admitting %s)", c.Name, c.Rule, c.Reason, c.Port)
}

// Conflicts finds the ingress rules of np that admit a protected port of a
// pod the policy protects. pods are the namespace's pods; np's podSelector
// must select one that p protects, or select every pod. Named ports are
// resolved on the protected pods np selects.
func Conflicts(np *networkingv1.NetworkPolicy, p *rules.Policy, pods []*corev1.Pod) []Conflict {
	if !hasIngress(np) {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil
	}
	var victims []*corev1.Pod
	for _, pod := range pods {
		l := labels.Set(pod.Labels)
		if sel.Matches(l) && p.Selector.Matches(l) {
			victims = append(victims, pod)
		}
	}
	if len(victims) == 0 && !sel.Empty() {
		return nil
	}
	var out []Conflict
	for i, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			for _, r := range p.Ports {
				out = append(out, Conflict{Name: np.Name, Rule: i, Port: r, Reason: "allows every port"})
			}
			continue
		}
		for _, r := range p.Ports {
			if reason, ok := admits(rule.Ports, r, victims); ok {
				out = append(out, Conflict{Name: np.Name, Rule: i, Port: r, Reason: reason})
			}
		}
	}
	return out
}

func hasIngress(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true // defaults to Ingress
	}
	for _, t := range np.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

// admits reports whether a ports list admits any port of the protected
// range r.
func admits(ports []networkingv1.NetworkPolicyPort, r rules.PortRange, pods []*corev1.Pod) (string, bool) {
	for _, pp := range ports {
		proto := corev1.ProtocolTCP
		if pp.Protocol != nil {
			proto = *pp.Protocol
		}
		if proto != r.Protocol {
			continue
		}
		if pp.Port == nil {
			return fmt.Sprintf("allows every %s port", proto), true
		}
		if pp.Port.Type == intstr.String {
			for _, pod := range pods {
				for _, c := range append(append([]corev1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...) {
					for _, cp := range c.Ports {
						cpProto := cp.Protocol
						if cpProto == "" {
							cpProto = corev1.ProtocolTCP
						}
						if cp.Name == pp.Port.StrVal && cpProto == proto && cp.ContainerPort >= r.From && cp.ContainerPort <= r.To {
							return fmt.Sprintf("allows named port %q", pp.Port.StrVal), true
						}
					}
				}
			}
			continue
		}
		from, to := pp.Port.IntVal, pp.Port.IntVal
		if pp.EndPort != nil {
			to = *pp.EndPort
		}
		if from <= r.To && to >= r.From {
			if from == to {
				return fmt.Sprintf("allows port %d", from), true
			}
			return fmt.Sprintf("allows ports %d-%d", from, to), true
		}
	}
	return "", false
}

func ptr[T any](v T) *T { return &v }
