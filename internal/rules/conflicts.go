package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/internal/podview"
)

// The NetworkPolicy math of an audit: NetworkPolicy allow-lists are
// unions, so any other NetworkPolicy that admits a protected port of a
// protected pod defeats the one loopguard manages (internal/netpol
// computes that one).

// Conflict is another NetworkPolicy that admits ingress to a protected port
// of a protected pod, which defeats the managed one: NetworkPolicy
// allow-lists are unions.
type Conflict struct {
	// Namespace and Name are the NetworkPolicy's; Rule the index in its
	// spec.ingress. A cluster policy's conflicts come from many namespaces,
	// where two tenants may give theirs one name.
	Namespace, Name string
	Rule            int
	Port            PortRange
	// Reason says how the rule admits the port ("allows port 15000").
	Reason string
	// Policy is the policy whose port it re-opens (set by Audit).
	Policy PolicyRef
}

func (c Conflict) String() string {
	name := c.Name
	if c.Namespace != "" {
		name = c.Namespace + "/" + c.Name
	}
	return fmt.Sprintf("%s (spec.ingress[%d] %s, admitting %s)", name, c.Rule, c.Reason, c.Port)
}

// NetworkPolicyConflicts finds the ingress rules of np that admit a protected port of a
// pod the policy protects. pods are the namespace's pods; np's podSelector
// must select one that p protects, or select every pod. Named ports are
// resolved on the protected pods np selects.
func NetworkPolicyConflicts(np *networkingv1.NetworkPolicy, p *Policy, pods []*podview.Pod) []Conflict {
	if !hasIngress(np) {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil
	}
	var victims []*podview.Pod
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
				out = append(out, Conflict{Namespace: np.Namespace, Name: np.Name, Rule: i, Port: r, Reason: "allows every port"})
			}
			continue
		}
		for _, r := range p.Ports {
			if reason, ok := admits(rule.Ports, r, victims); ok {
				out = append(out, Conflict{Namespace: np.Namespace, Name: np.Name, Rule: i, Port: r, Reason: reason})
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
func admits(ports []networkingv1.NetworkPolicyPort, r PortRange, pods []*podview.Pod) (string, bool) {
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
				for _, c := range append(append([]corev1.Container{}, pod.TrimmedSpec.Containers...), pod.TrimmedSpec.InitContainers...) {
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
