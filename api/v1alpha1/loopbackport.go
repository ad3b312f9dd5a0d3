package v1alpha1

import corev1 "k8s.io/api/core/v1"

// Covers tells whether the entry declares port/proto loopback-only: proto
// is its protocol (TCP when unset) and port lies in port..endPort.
func (p LoopbackPort) Covers(proto corev1.Protocol, port int32) bool {
	want := p.Protocol
	if want == "" {
		want = corev1.ProtocolTCP
	}
	to := p.Port
	if p.EndPort != nil {
		to = *p.EndPort
	}
	return proto == want && port >= p.Port && port <= to
}
