package v1alpha1

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestLoopbackPortCovers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     LoopbackPort
		proto corev1.Protocol
		port  int32
		want  bool
	}{
		{"single port, TCP by default", LoopbackPort{Port: 15000}, corev1.ProtocolTCP, 15000, true},
		{"other port", LoopbackPort{Port: 15000}, corev1.ProtocolTCP, 15001, false},
		{"other protocol", LoopbackPort{Port: 15000}, corev1.ProtocolUDP, 15000, false},
		{"UDP entry", LoopbackPort{Port: 5353, Protocol: corev1.ProtocolUDP}, corev1.ProtocolUDP, 5353, true},
		{"first of a range", LoopbackPort{Port: 6060, EndPort: ptr.To[int32](6069)}, corev1.ProtocolTCP, 6060, true},
		{"last of a range", LoopbackPort{Port: 6060, EndPort: ptr.To[int32](6069)}, corev1.ProtocolTCP, 6069, true},
		{"past a range", LoopbackPort{Port: 6060, EndPort: ptr.To[int32](6069)}, corev1.ProtocolTCP, 6070, false},
		{"below a range", LoopbackPort{Port: 6060, EndPort: ptr.To[int32](6069)}, corev1.ProtocolTCP, 6059, false},
	} {
		if got := tc.p.Covers(tc.proto, tc.port); got != tc.want {
			t.Errorf("%s: Covers(%s, %d) = %v, want %v", tc.name, tc.proto, tc.port, got, tc.want)
		}
	}
}
