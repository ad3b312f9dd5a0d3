//go:build node

package netpol

import (
	"encoding/json"
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/test/devcluster"
)

// model is the NetworkPolicy semantics of the Kubernetes API reference,
// written independently of loopguard and of the enforcer: the expected
// truth table is computed with it from the objects in the cluster.
// AdminNetworkPolicies are not modelled; a test that uses one states the
// expectation it adds.
type model struct {
	pods     map[podRef]*corev1.Pod
	nsLabels map[string]labels.Set
	policies []networkingv1.NetworkPolicy
}

// snapshot reads the world's pods, namespaces and every NetworkPolicy of
// the world's namespaces from the cluster.
func snapshot(t *testing.T, w *world) *model {
	t.Helper()
	m := &model{pods: map[podRef]*corev1.Pod{}, nsLabels: map[string]labels.Set{}}
	for _, ns := range []string{w.a, w.b} {
		var pods corev1.PodList
		getJSON(t, &pods, "get", "pods", "-n", ns, "-o", "json")
		for i := range pods.Items {
			p := &pods.Items[i]
			m.pods[podRef{ns, p.Name}] = p
		}
		var n corev1.Namespace
		getJSON(t, &n, "get", "namespace", ns, "-o", "json")
		m.nsLabels[ns] = n.Labels
		var nps networkingv1.NetworkPolicyList
		getJSON(t, &nps, "get", "networkpolicies", "-n", ns, "-o", "json")
		m.policies = append(m.policies, nps.Items...)
	}
	return m
}

func getJSON(t *testing.T, into any, args ...string) {
	t.Helper()
	r := devcluster.MustKubectl(t, "", args...)
	if err := json.Unmarshal([]byte(r.Stdout), into); err != nil {
		t.Fatalf("failed to decode kubectl %v: %v", args, err)
	}
}

// allowed reports whether a new flow from one pod to a port of another is
// admitted: by the egress policies of the source and the ingress policies
// of the destination.
func (m *model) allowed(from, to podRef, p port) bool {
	src, dst := m.pods[from], m.pods[to]
	if src == nil || dst == nil {
		return false
	}
	return m.admits(networkingv1.PolicyTypeEgress, src, dst, p) && m.admits(networkingv1.PolicyTypeIngress, dst, src, p)
}

// admits applies the policies of one direction that select subject: none
// selects it, or one of their rules admits the peer on the destination
// port.
func (m *model) admits(dir networkingv1.PolicyType, subject, peer *corev1.Pod, p port) bool {
	selected := false
	for i := range m.policies {
		np := &m.policies[i]
		if np.Namespace != subject.Namespace || !hasType(np, dir) || !selects(&np.Spec.PodSelector, subject.Labels) {
			continue
		}
		selected = true
		dst := subject
		if dir == networkingv1.PolicyTypeEgress {
			dst = peer
		}
		if dir == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if m.peersMatch(r.From, np.Namespace, peer) && portsMatch(r.Ports, dst, p) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if m.peersMatch(r.To, np.Namespace, peer) && portsMatch(r.Ports, dst, p) {
					return true
				}
			}
		}
	}
	return !selected
}

func hasType(np *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	for _, t := range np.Spec.PolicyTypes {
		if t == dir {
			return true
		}
	}
	// The API server defaults policyTypes; this covers an object read
	// without defaults: Ingress always, Egress when it has egress rules.
	return len(np.Spec.PolicyTypes) == 0 && (dir == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0)
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// peersMatch: no peers admit everyone; a peer is an ipBlock, or pod and/or
// namespace selectors (a podSelector alone means the policy's namespace).
func (m *model) peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, pod *corev1.Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			if ipBlockMatches(peer.IPBlock, pod.Status.PodIP) {
				return true
			}
			continue
		}
		nsOK := pod.Namespace == policyNS
		if peer.NamespaceSelector != nil {
			nsOK = selects(peer.NamespaceSelector, m.nsLabels[pod.Namespace])
		}
		podOK := peer.PodSelector == nil || selects(peer.PodSelector, pod.Labels)
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func ipBlockMatches(b *networkingv1.IPBlock, ip string) bool {
	addr := net.ParseIP(ip)
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if addr == nil || err != nil || !cidr.Contains(addr) {
		return false
	}
	for _, e := range b.Except {
		if _, ex, err := net.ParseCIDR(e); err == nil && ex.Contains(addr) {
			return false
		}
	}
	return true
}

// portsMatch: no ports admit every port; a named port resolves on the
// destination pod's containers (name, protocol and number must match).
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst *corev1.Pod, p port) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		proto := corev1.ProtocolTCP
		if pp.Protocol != nil {
			proto = *pp.Protocol
		}
		if proto != p.Proto {
			continue
		}
		switch {
		case pp.Port == nil:
			return true
		case pp.Port.Type == intstr.String:
			for _, c := range dst.Spec.Containers {
				for _, cp := range c.Ports {
					cpProto := cp.Protocol
					if cpProto == "" {
						cpProto = corev1.ProtocolTCP
					}
					if cp.Name == pp.Port.StrVal && cpProto == proto && cp.ContainerPort == p.Num {
						return true
					}
				}
			}
		default:
			to := pp.Port.IntVal
			if pp.EndPort != nil {
				to = *pp.EndPort
			}
			if p.Num >= pp.Port.IntVal && p.Num <= to {
				return true
			}
		}
	}
	return false
}
